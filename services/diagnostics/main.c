/* sav-diagnostics: proposes a pre-diagnosis for every new ticket. */
#include "prediag.h"
#include "service.h"

static const service_route diagnostics_routes[] = {
    {SAV__MESSAGE_TYPE__TICKET_RECEIVED, NULL, prediag_on_ticket_received},
};

static const enum service_id diagnostics_destinations[] = {SVC_BILLING};

int main(int argc, char **argv) {
    const service_def def = {
        .id = SVC_DIAGNOSTICS,
        .routes = diagnostics_routes,
        .nroutes = sizeof(diagnostics_routes) / sizeof(diagnostics_routes[0]),
        .destinations = diagnostics_destinations,
        .ndestinations = 1,
        .uses_catalog = 1,
    };
    return service_main(&def, argc, argv);
}
