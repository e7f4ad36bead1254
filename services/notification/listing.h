/* listing: the operator's view of notifications: list by status, retry a failed e-mail. */
#ifndef SAV_LISTING_H
#define SAV_LISTING_H

#include "service.h"

/* notification.list [status] [limit]: newest first. */
void listing_list(service *svc, const Sav__Command *cmd, service_reply *reply);

/* notification.retry ID: a failed e-mail goes back to the queue. */
void listing_retry(service *svc, const Sav__Command *cmd, service_reply *reply);

#endif
