/* intake: the front desk and call centre. Customers, products, contracts,
 * the catalog, tickets (opened, listed, cancelled, picked up), complaints,
 * and the timers of pickup, complaints and preventive maintenance. */
#ifndef SAV_INTAKE_H
#define SAV_INTAKE_H

#include "archive.h"
#include "service.h"

/* ticket.open request: validates, checks the customer and product, stores the ticket, emits TicketReceived. */
void intake_on_ticket_open(service *svc, const Sav__Envelope *req, service_reply *reply);

/* The reads a ticket open starts with (its customer's and product's facts), sent ahead with its burst's. */
int intake_read_ahead(service *svc, const Sav__Envelope *req, store_args reads[SERVICE_READS_AHEAD]);

/* Opens a ticket from a decoded request (also used by the maintenance timer); fills reply. */
void intake_open(service *svc, const Sav__TicketOpen *o, service_reply *reply);

/* ticket.show request: everything every service recorded about a ticket. */
void intake_on_ticket_show(service *svc, const Sav__Envelope *req, service_reply *reply);

/* Commands (see tools/savctl for their arguments). */
void registry_customer_add(service *svc, const Sav__Command *cmd, service_reply *reply);
void registry_customer_update(service *svc, const Sav__Command *cmd, service_reply *reply);
void registry_customer_erase(service *svc, const Sav__Command *cmd, service_reply *reply);
void registry_product_add(service *svc, const Sav__Command *cmd, service_reply *reply);
void registry_product_transfer(service *svc, const Sav__Command *cmd, service_reply *reply);
void registry_contract_add(service *svc, const Sav__Command *cmd, service_reply *reply);
void views_customer_show(service *svc, const Sav__Command *cmd, service_reply *reply);
void views_customer_list(service *svc, const Sav__Command *cmd, service_reply *reply);
void views_product_show(service *svc, const Sav__Command *cmd, service_reply *reply);
void views_ticket_list(service *svc, const Sav__Command *cmd, service_reply *reply);
void views_catalog_show(service *svc, const Sav__Command *cmd, service_reply *reply);
void views_catalog_load(service *svc, const Sav__Command *cmd, service_reply *reply);
void steps_ticket_cancel(service *svc, const Sav__Command *cmd, service_reply *reply);
void steps_ticket_pickup(service *svc, const Sav__Command *cmd, service_reply *reply);
void complaint_open_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);
void complaint_resolve_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);
void complaint_show_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);
void sched_maintenance_due(service *svc, const Sav__Command *cmd, service_reply *reply);

/* Returns a flat HGETALL reply (names NULL) or HMGET reply (names: its field names) as a typed JSON object. */
json_t *views_object(const redisReply *flat, const redisReply *names);

/* Timers: pickup reminders, unclaimed flag, complaint escalation and mediator, maintenance visits, archiving. */
void intake_tick(service *svc);

/* Archiving (archiving.c): writes intake.archive_dir, resolved against the configuration's directory, into out. */
void archiving_dir(service *svc, char *out, size_t len);

/* Looks a ticket up in `archived`: 1 with its month and its file's path, 0 when it is not archived, -1 when Redis
 * is unreachable (err set). */
int archiving_locate(service *svc, const char *tid, char *path, size_t len, char month[ARCHIVE_MONTH_LEN]);

/* The archiving timer: moves out of Redis a bounded number of the tickets due (intake.archive_after_days). */
void archiving_tick(service *svc);

/* Packing (packing.c): the timer packs a bounded number of the settled closed tickets unchanged for
 * intake.pack_after_days, and packs again, whole, those written to since. */
void packing_tick(service *svc);

/* Puts a packed ticket's records back in their keys (ticket_unpack); 0 also when it is not packed, -1 with err. */
int packing_unpack(service *svc, const char *tid);

/* Commands archive.run (archive what is due now, up to --limit), archive.pack (pack what is due now, up to --limit),
 * archive.search and check (datacheck.c). */
void packing_run(service *svc, const Sav__Command *cmd, service_reply *reply);
void archiving_run(service *svc, const Sav__Command *cmd, service_reply *reply);
void archiving_search_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);
void datacheck_run(service *svc, const Sav__Command *cmd, service_reply *reply);

#endif
