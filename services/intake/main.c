/* sav-intake: registers service tickets and answers queries about them. */
#include "intake.h"
#include "service.h"

static const service_route intake_routes[] = {
    {SAV__MESSAGE_TYPE__TICKET_OPEN, intake_on_ticket_open, NULL},
    {SAV__MESSAGE_TYPE__TICKET_SHOW, intake_on_ticket_show, NULL},
};

static const enum service_id intake_destinations[] = {SVC_DIAGNOSTICS};

int main(int argc, char **argv) {
    const service_def def = {
        .id = SVC_INTAKE,
        .routes = intake_routes,
        .nroutes = sizeof(intake_routes) / sizeof(intake_routes[0]),
        .destinations = intake_destinations,
        .ndestinations = 1,
        .uses_catalog = 1,
    };
    return service_main(&def, argc, argv);
}
