/* sav-intake: the front desk. Customers, products, contracts, catalog, tickets, complaints, and their timers. */
#include "intake.h"
#include "service.h"

static const service_route intake_routes[] = {
    {SAV__MESSAGE_TYPE__TICKET_OPEN, intake_on_ticket_open, NULL, intake_read_ahead},
    {SAV__MESSAGE_TYPE__TICKET_SHOW, intake_on_ticket_show, NULL, NULL},
};

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static const service_command intake_commands[] = {
    {"customer.add", ARGS("name", "phone", "email", "lang", "business", "consent"), registry_customer_add},
    {"customer.update", ARGS("id", "name", "phone", "email", "lang", "business", "consent"), registry_customer_update},
    {"customer.erase", ARGS("id"), registry_customer_erase},
    {"customer.show", ARGS("id"), views_customer_show},
    {"customer.list", ARGS("search", "limit"), views_customer_list},
    {"product.add", ARGS("serial", "model", "customer", "delivered", "second_hand", "bought_at"), registry_product_add},
    {"product.show", ARGS("serial"), views_product_show},
    {"product.transfer", ARGS("serial", "to", "date", "note"), registry_product_transfer},
    {"contract.add", ARGS("serial", "type", "start", "end", "every", "visits", "covers", "price", "included"),
     registry_contract_add},
    {"catalog.load", ARGS("document"), views_catalog_load},
    {"catalog.show", ARGS("section"), views_catalog_show},
    {"ticket.list", ARGS("state", "centre", "customer", "kind", "overdue", "unclaimed", "limit"), views_ticket_list},
    {"ticket.cancel", ARGS("id", "reason"), steps_ticket_cancel},
    {"ticket.pickup", ARGS("id"), steps_ticket_pickup},
    {"complaint.open", ARGS("ticket", "reason", "text", "notice_deadline"), complaint_open_cmd},
    {"complaint.resolve", ARGS("id", "resolution", "note", "amount"), complaint_resolve_cmd},
    {"complaint.show", ARGS("id"), complaint_show_cmd},
    {"maintenance.due", ARGS("days"), sched_maintenance_due},
    {"check", (const char *const[]){NULL}, datacheck_run},
    {"archive.run", ARGS("limit"), archiving_run},
    {"archive.pack", ARGS("limit"), packing_run},
    {"archive.search", ARGS("ticket", "customer", "serial", "from", "to", "limit"), archiving_search_cmd},
};

static const enum service_id intake_destinations[] = {SVC_DIAGNOSTICS, SVC_NOTIFICATION};

int main(int argc, char **argv) {
    const service_def def = {
        .id = SVC_INTAKE,
        .routes = intake_routes,
        .nroutes = sizeof(intake_routes) / sizeof(intake_routes[0]),
        .commands = intake_commands,
        .ncommands = sizeof(intake_commands) / sizeof(intake_commands[0]),
        .destinations = intake_destinations,
        .ndestinations = 2,
        .uses_catalog = 1,
        .tick = intake_tick,
    };
    return service_main(&def, argc, argv);
}
