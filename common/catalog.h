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

typedef struct catalog_part {
    char ref[CATALOG_ID_LEN];
    char name[CATALOG_TEXT_LEN];
    int64_t price_cents; /* customer price excluding VAT */
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

#endif
