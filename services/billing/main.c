/* sav-billing: coverage estimates, quotes, invoices with gapless numbering, payments, credit notes, reminders and
 * the manufacturer's warranty claims. */
#include "estimate.h"
#include "facts.h"
#include "invoice.h"
#include "quote.h"
#include "reminders.h"
#include "service.h"

static const service_route billing_routes[] = {
    {SAV__MESSAGE_TYPE__PREDIAGNOSIS_DONE, NULL, estimate_on_prediagnosis, facts_read_ahead},
    {SAV__MESSAGE_TYPE__VERDICT_RECORDED, NULL, quote_on_verdict, facts_read_ahead},
    {SAV__MESSAGE_TYPE__TICKET_READY, NULL, invoice_on_ready, NULL},
};

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static const service_command billing_commands[] = {
    {"quote.show", ARGS("id"), quote_show_cmd},
    {"quote.accept", ARGS("id"), quote_accept_cmd},
    {"quote.refuse", ARGS("id", "reason"), quote_refuse_cmd},
    {"invoice.show", ARGS("id"), invoice_show_cmd},
    {"invoice.list", ARGS("status", "customer", "overdue", "limit"), invoice_list_cmd},
    {"invoice.credit", ARGS("id", "amount", "full", "reason"), invoice_credit_cmd},
    {"invoice.export", ARGS("id"), invoice_export_cmd},
    {"payment.record", ARGS("invoice", "amount", "method", "ref"), payment_record_cmd},
    {"claim.list", ARGS("status"), claim_list_cmd},
    {"claim.decide", ARGS("id", "status", "reason"), claim_decide_cmd},
};

static const enum service_id billing_destinations[] = {SVC_NOTIFICATION};

int main(int argc, char **argv) {
    const service_def def = {
        .id = SVC_BILLING,
        .routes = billing_routes,
        .nroutes = sizeof(billing_routes) / sizeof(billing_routes[0]),
        .commands = billing_commands,
        .ncommands = sizeof(billing_commands) / sizeof(billing_commands[0]),
        .destinations = billing_destinations,
        .ndestinations = 1,
        .uses_catalog = 1,
        .tick = reminders_tick,
    };
    return service_main(&def, argc, argv);
}
