/* lifecycle: the service ticket's state machine, in one place. Handlers ask
 * it whether an event is allowed in the current state and what the next
 * state is, then apply the change with a compare-and-set on the state in
 * Redis (a concurrent change makes the call fail, never skip a check).
 *
 * States: received, in_diagnosis, awaiting_approval, waiting_parts,
 * in_repair, ready, closed, cancelled. Installation, commissioning and
 * preventive maintenance skip diagnosis. Cancelling is possible until repair
 * starts. Pure: no I/O. */
#ifndef SAV_LIFECYCLE_H
#define SAV_LIFECYCLE_H

enum lifecycle_event {
    LC_DIAGNOSIS_START = 0, /* pre-diagnosis recorded */
    LC_QUOTE_SENT,          /* the customer must approve a quote */
    LC_QUOTE_ACCEPTED,
    LC_QUOTE_REFUSED,       /* -> ready, outcome unrepaired */
    LC_PARTS_MISSING,       /* -> waiting_parts */
    LC_PARTS_ARRIVED,
    LC_REPAIR_START,
    LC_REPAIR_DONE,         /* -> ready */
    LC_NO_FAULT,            /* diagnosis found nothing: -> ready */
    LC_PICKUP,              /* -> closed */
    LC_CANCEL,              /* -> cancelled */
    LC_VERDICT_CORRECTED,   /* a corrected verdict takes the ticket back to in_diagnosis */
    LC_EVENT_COUNT
};

/* Returns the event's name ("repair.start"), or NULL for an out-of-range value. */
const char *lifecycle_event_name(enum lifecycle_event ev);

/* Returns the i-th ticket state in lifecycle order, or NULL past the last. */
const char *lifecycle_state_at(int i);

/* Returns 1 if state names a ticket state. */
int lifecycle_state_valid(const char *state);

/* Returns 1 if the state is final (closed, cancelled). */
int lifecycle_state_final(const char *state);

/* Returns 1 if tickets of this kind skip diagnosis (installation, commissioning, preventive_maintenance). */
int lifecycle_skips_diagnosis(const char *kind);

/* Returns the state after ev, or NULL with err set to a sentence naming the current state. */
const char *lifecycle_next(const char *kind, const char *state, enum lifecycle_event ev);

#endif
