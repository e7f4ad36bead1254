#include "lifecycle.h"
#include "err.h"

#include <stddef.h>
#include <string.h>

static const char *const lifecycle_states[] = {"received", "in_diagnosis", "awaiting_approval", "waiting_parts",
                                               "in_repair", "ready", "closed", "cancelled", NULL};

const char *lifecycle_state_at(int i) {
    return i >= 0 && i < (int)(sizeof(lifecycle_states) / sizeof(lifecycle_states[0])) ? lifecycle_states[i] : NULL;
}

static const char *const lifecycle_event_names[LC_EVENT_COUNT] = {
    "diagnosis.start", "quote.sent", "quote.accepted", "quote.refused", "parts.missing", "parts.arrived",
    "repair.start", "repair.done", "no_fault", "pickup", "cancel", "verdict.corrected"};

/* One allowed transition. kind_filter: 0 any kind, 1 only kinds with diagnosis, 2 only kinds without. */
typedef struct lifecycle_rule {
    const char *from;
    enum lifecycle_event ev;
    const char *to;
    int kind_filter;
} lifecycle_rule;

static const lifecycle_rule lifecycle_rules[] = {
    {"received", LC_DIAGNOSIS_START, "in_diagnosis", 1},
    {"in_diagnosis", LC_QUOTE_SENT, "awaiting_approval", 1},
    {"awaiting_approval", LC_QUOTE_ACCEPTED, "in_repair", 1},
    {"awaiting_approval", LC_QUOTE_REFUSED, "ready", 1},
    {"in_diagnosis", LC_PARTS_MISSING, "waiting_parts", 1},
    {"awaiting_approval", LC_PARTS_MISSING, "waiting_parts", 1},
    {"received", LC_PARTS_MISSING, "waiting_parts", 2},
    {"waiting_parts", LC_PARTS_ARRIVED, "in_repair", 0},
    {"in_diagnosis", LC_REPAIR_START, "in_repair", 1},
    {"received", LC_REPAIR_START, "in_repair", 2},
    {"in_repair", LC_REPAIR_DONE, "ready", 0},
    {"in_diagnosis", LC_NO_FAULT, "ready", 1},
    {"ready", LC_PICKUP, "closed", 0},
    {"received", LC_CANCEL, "cancelled", 0},
    {"in_diagnosis", LC_CANCEL, "cancelled", 0},
    {"awaiting_approval", LC_CANCEL, "cancelled", 0},
    {"waiting_parts", LC_CANCEL, "cancelled", 0},
    {"awaiting_approval", LC_VERDICT_CORRECTED, "in_diagnosis", 1},
    {"waiting_parts", LC_VERDICT_CORRECTED, "in_diagnosis", 1},
};

const char *lifecycle_event_name(enum lifecycle_event ev) {
    return (unsigned)ev < LC_EVENT_COUNT ? lifecycle_event_names[ev] : NULL;
}

int lifecycle_state_valid(const char *state) {
    for (const char *const *s = lifecycle_states; *s; s++)
        if (strcmp(*s, state) == 0) return 1;
    return 0;
}

int lifecycle_state_final(const char *state) {
    return strcmp(state, "closed") == 0 || strcmp(state, "cancelled") == 0;
}

int lifecycle_skips_diagnosis(const char *kind) {
    return strcmp(kind, "installation") == 0 || strcmp(kind, "commissioning") == 0 ||
           strcmp(kind, "preventive_maintenance") == 0;
}

const char *lifecycle_next(const char *kind, const char *state, enum lifecycle_event ev) {
    int filter = lifecycle_skips_diagnosis(kind) ? 2 : 1;
    for (size_t i = 0; i < sizeof(lifecycle_rules) / sizeof(lifecycle_rules[0]); i++) {
        const lifecycle_rule *r = &lifecycle_rules[i];
        if (r->ev == ev && strcmp(r->from, state) == 0 && (r->kind_filter == 0 || r->kind_filter == filter))
            return r->to;
    }
    if (ev == LC_CANCEL && (strcmp(state, "in_repair") == 0 || strcmp(state, "ready") == 0))
        err_set("the ticket is %s: it can no longer be cancelled once repair has started", state);
    else if (lifecycle_state_final(state))
        err_set("the ticket is %s: no further step is possible", state);
    else
        err_set("%s is not possible while the ticket is %s", lifecycle_event_name(ev) ? lifecycle_event_name(ev) : "?",
                state);
    return NULL;
}
