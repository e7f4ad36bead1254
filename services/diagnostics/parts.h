/* parts: spare-parts stock per service centre. Receiving stock or adjusting
 * it hands freed parts to the tickets waiting for them, first come first
 * served; stock never goes negative and reserved parts cannot be adjusted away. */
#ifndef SAV_PARTS_H
#define SAV_PARTS_H

#include "service.h"

/* parts.stock CENTRE: on hand, reserved, received, consumed, adjusted, tickets waiting, per part. */
void parts_stock_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);

/* parts.receive CENTRE REF QTY: stock received from the manufacturer. */
void parts_receive_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);

/* parts.adjust CENTRE REF DELTA --reason: inventory correction. */
void parts_adjust_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);

#endif
