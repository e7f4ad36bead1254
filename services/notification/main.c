/* sav-notification: renders the customer's messages in their language and
 * records each once in the ticket's notification log. */
#include "contact.h"
#include "listing.h"
#include "notify.h"
#include "service.h"

static const service_route notification_routes[] = {
    {SAV__MESSAGE_TYPE__COVERAGE_ESTIMATED, NULL, notify_on_coverage_estimated, contact_read_ahead},
    {SAV__MESSAGE_TYPE__CUSTOMER_NOTICE, NULL, notify_on_customer_notice, contact_read_ahead},
};

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static const service_command notification_commands[] = {
    {"notification.list", ARGS("status", "limit"), listing_list},
    {"notification.retry", ARGS("id"), listing_retry},
};

int main(int argc, char **argv) {
    const service_def def = {
        .id = SVC_NOTIFICATION,
        .routes = notification_routes,
        .nroutes = sizeof(notification_routes) / sizeof(notification_routes[0]),
        .commands = notification_commands,
        .ncommands = sizeof(notification_commands) / sizeof(notification_commands[0]),
        .destinations = NULL,
        .ndestinations = 0,
        .uses_catalog = 1, /* the ticket's centre: name, address, opening hours */
        .init = notify_init,
        .cleanup = notify_cleanup,
    };
    return service_main(&def, argc, argv);
}
