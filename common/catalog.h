/* catalog: the manufacturer's reference data, read from a JSON file
 * (format documented in docs/CATALOG.md): models, spare parts, and the
 * fault-code table per product family. Loading validates everything; a
 * service refuses to start on a bad catalog rather than guess. */
#ifndef SAV_CATALOG_H
#define SAV_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#define CATALOG_ID_LEN 65
#define CATALOG_TEXT_LEN 256
#define CATALOG_MAX_FAULT_PARTS 8

typedef struct catalog_model {
    char id[CATALOG_ID_LEN];
    char name[CATALOG_TEXT_LEN];
    char family[CATALOG_ID_LEN];
    int commercial_warranty_months;
    int parts_availability_years; /* D5: how long spare parts stay available */
} catalog_model;

/* A service centre or authorised repairer, with its own rates. */
typedef struct catalog_centre {
    char id[CATALOG_ID_LEN];
    char name[CATALOG_TEXT_LEN];
    char address[CATALOG_TEXT_LEN];
    char opening_hours[CATALOG_TEXT_LEN];
    int64_t labour_rate_cents;    /* per hour, excluding VAT */
    int64_t travel_fee_cents;     /* per on-site visit, excluding VAT */
    int64_t diagnostic_fee_cents; /* 0 when the centre does not charge one */
} catalog_centre;

#define CATALOG_MAX_STOCK 32

typedef struct catalog_stock {
    char centre[CATALOG_ID_LEN];
    int quantity;
} catalog_stock;

typedef struct catalog_part {
    char ref[CATALOG_ID_LEN];
    char name[CATALOG_TEXT_LEN];
    int64_t price_cents; /* customer price excluding VAT */
    catalog_stock stock[CATALOG_MAX_STOCK]; /* initial stock per centre */
    int nstock;
} catalog_part;

typedef struct catalog_fault_part {
    char ref[CATALOG_ID_LEN];
    int quantity;
} catalog_fault_part;

typedef struct catalog_fault {
    char family[CATALOG_ID_LEN];
    char code[CATALOG_ID_LEN];
    char symptom[CATALOG_TEXT_LEN];
    char cause[CATALOG_TEXT_LEN];
    catalog_fault_part parts[CATALOG_MAX_FAULT_PARTS];
    int nparts;
    int labour_minutes;
} catalog_fault;

typedef struct catalog catalog;

/* Reads and validates a catalog file; NULL with err naming the entry at fault. Free with catalog_free. */
catalog *catalog_load(const char *path);

/* Validates a catalog held in memory (len bytes of JSON); NULL with err. Free with catalog_free. */
catalog *catalog_parse(const char *json, size_t len);

/* Frees a catalog (NULL is fine). */
void catalog_free(catalog *c);

/* Returns the model with this id, or NULL; owned by the catalog. */
const catalog_model *catalog_model_find(const catalog *c, const char *id);

/* Returns the part with this reference, or NULL; owned by the catalog. */
const catalog_part *catalog_part_find(const catalog *c, const char *ref);

/* Returns the fault code entry of a family, or NULL; owned by the catalog. */
const catalog_fault *catalog_fault_find(const catalog *c, const char *family, const char *code);

/* Returns how many models the catalog holds. */
size_t catalog_model_count(const catalog *c);

/* Returns the centre with this id, or NULL; owned by the catalog. */
const catalog_centre *catalog_centre_find(const catalog *c, const char *id);

/* Returns the i-th centre, or NULL past the end; owned by the catalog. */
const catalog_centre *catalog_centre_at(const catalog *c, size_t i);

/* Returns the i-th part, or NULL past the end; owned by the catalog. */
const catalog_part *catalog_part_at(const catalog *c, size_t i);

/* Returns the i-th model, or NULL past the end; owned by the catalog. */
const catalog_model *catalog_model_at(const catalog *c, size_t i);

/* Returns the i-th fault code, or NULL past the end; owned by the catalog. */
const catalog_fault *catalog_fault_at(const catalog *c, size_t i);

#endif
