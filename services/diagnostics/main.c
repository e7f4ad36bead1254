/* sav-diagnostics: pre-diagnosis of every new ticket, the technician's verdict and its coverage decision,
 * spare parts, repair steps, and the 30-day deadline of legal-guarantee repairs. */
#include "deadline.h"
#include "parts.h"
#include "prediag.h"
#include "repair.h"
#include "service.h"
#include "verdict.h"

static const service_route diagnostics_routes[] = {
    {SAV__MESSAGE_TYPE__TICKET_RECEIVED, NULL, prediag_on_ticket_received, NULL},
};

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static const service_command diagnostics_commands[] = {
    {"diagnose", ARGS("id", "cause", "action", "part", "labour", "note"), verdict_diagnose},
    {"repair.start", ARGS("id"), repair_start},
    {"repair.done", ARGS("id", "note"), repair_done},
    {"repair.exchange", ARGS("id", "new_serial", "model"), repair_exchange},
    {"repair.impossible", ARGS("id", "reason"), repair_impossible},
    {"parts.stock", ARGS("centre"), parts_stock_cmd},
    {"parts.receive", ARGS("centre", "part", "quantity", "reason"), parts_receive_cmd},
    {"parts.adjust", ARGS("centre", "part", "delta", "reason"), parts_adjust_cmd},
};

static const enum service_id diagnostics_destinations[] = {SVC_BILLING, SVC_NOTIFICATION};

int main(int argc, char **argv) {
    const service_def def = {
        .id = SVC_DIAGNOSTICS,
        .routes = diagnostics_routes,
        .nroutes = sizeof(diagnostics_routes) / sizeof(diagnostics_routes[0]),
        .commands = diagnostics_commands,
        .ncommands = sizeof(diagnostics_commands) / sizeof(diagnostics_commands[0]),
        .destinations = diagnostics_destinations,
        .ndestinations = 2,
        .uses_catalog = 1,
        .tick = deadline_tick,
    };
    return service_main(&def, argc, argv);
}
