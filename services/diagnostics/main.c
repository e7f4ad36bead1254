/* sav-diagnostics: pre-diagnosis of every new ticket, and the technician's repair steps. */
#include "prediag.h"
#include "repair.h"
#include "service.h"

static const service_route diagnostics_routes[] = {
    {SAV__MESSAGE_TYPE__TICKET_RECEIVED, NULL, prediag_on_ticket_received},
};

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static const service_command diagnostics_commands[] = {
    {"repair.start", ARGS("id", "tech"), repair_start},
    {"repair.done", ARGS("id", "tech", "note"), repair_done},
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
    };
    return service_main(&def, argc, argv);
}
