/* sav-billing: estimates who pays for each diagnosed ticket. */
#include "estimate.h"
#include "service.h"

static const service_route billing_routes[] = {
    {SAV__MESSAGE_TYPE__PREDIAGNOSIS_DONE, NULL, estimate_on_prediagnosis},
};

static const enum service_id billing_destinations[] = {SVC_NOTIFICATION};

int main(int argc, char **argv) {
    const service_def def = {
        .id = SVC_BILLING,
        .routes = billing_routes,
        .nroutes = sizeof(billing_routes) / sizeof(billing_routes[0]),
        .destinations = billing_destinations,
        .ndestinations = 1,
        .uses_catalog = 1,
    };
    return service_main(&def, argc, argv);
}
