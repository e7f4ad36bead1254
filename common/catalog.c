#include "catalog.h"
#include "err.h"
#include "validate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The catalog is reference data of a few thousand entries at most. */
#define CATALOG_MAX_ENTRIES 100000

struct catalog {
    catalog_model *models;
    size_t nmodels;
    catalog_centre *centres;
    size_t ncentres;
    catalog_part *parts;
    size_t nparts;
    catalog_fault *faults;
    size_t nfaults;
};

/* Copies a required string member into out, checking it as a token or as text. */
static int catalog_string(json_t *obj, const char *key, char *out, size_t outlen, int token, const char *where) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) {
        err_set("%s: \"%s\" must be a string", where, key);
        return -1;
    }
    const char *s = json_string_value(v);
    char field[128];
    snprintf(field, sizeof(field), "%s: %s", where, key);
    if (token ? validate_token(field, s) != 0 : validate_text(field, s, outlen - 1, 0) != 0) return -1;
    snprintf(out, outlen, "%s", s);
    return 0;
}

static int catalog_int(json_t *obj, const char *key, long min, long max, int64_t *out, const char *where) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        err_set("%s: \"%s\" must be an integer from %ld to %ld", where, key, min, max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int catalog_model_parse(json_t *o, catalog_model *m, const char *where) {
    int64_t months, years;
    if (!json_is_object(o) || catalog_string(o, "id", m->id, sizeof(m->id), 1, where) != 0 ||
        catalog_string(o, "name", m->name, sizeof(m->name), 0, where) != 0 ||
        catalog_string(o, "family", m->family, sizeof(m->family), 1, where) != 0 ||
        catalog_int(o, "commercial_warranty_months", 0, 240, &months, where) != 0 ||
        catalog_int(o, "parts_availability_years", 0, 50, &years, where) != 0)
        return -1;
    m->commercial_warranty_months = (int)months;
    m->parts_availability_years = (int)years;
    return 0;
}

static int catalog_centre_parse(json_t *o, catalog_centre *ce, const char *where) {
    if (!json_is_object(o) || catalog_string(o, "id", ce->id, sizeof(ce->id), 1, where) != 0 ||
        catalog_string(o, "name", ce->name, sizeof(ce->name), 0, where) != 0 ||
        catalog_string(o, "address", ce->address, sizeof(ce->address), 0, where) != 0 ||
        catalog_string(o, "opening_hours", ce->opening_hours, sizeof(ce->opening_hours), 0, where) != 0 ||
        catalog_int(o, "labour_rate_cents", 0, 10000000, &ce->labour_rate_cents, where) != 0 ||
        catalog_int(o, "travel_fee_cents", 0, 10000000, &ce->travel_fee_cents, where) != 0 ||
        catalog_int(o, "diagnostic_fee_cents", 0, 10000000, &ce->diagnostic_fee_cents, where) != 0)
        return -1;
    return 0;
}

/* Reads the optional {"CENTRE": quantity} object of a part; every centre must exist. */
static int catalog_stock_parse(const catalog *c, json_t *o, catalog_part *p, const char *where) {
    json_t *stock = json_object_get(o, "stock"), *qty;
    const char *centre;
    if (!stock) return 0;
    if (!json_is_object(stock) || json_object_size(stock) > CATALOG_MAX_STOCK) {
        err_set("%s: \"stock\" must be an object of at most %d centres", where, CATALOG_MAX_STOCK);
        return -1;
    }
    json_object_foreach(stock, centre, qty) {
        if (!catalog_centre_find(c, centre)) {
            err_set("%s: stock for unknown centre \"%s\"", where, centre);
            return -1;
        }
        if (!json_is_integer(qty) || json_integer_value(qty) < 0 || json_integer_value(qty) > 1000000) {
            err_set("%s: stock of %s must be an integer from 0 to 1000000", where, centre);
            return -1;
        }
        catalog_stock *s = &p->stock[p->nstock++];
        snprintf(s->centre, sizeof(s->centre), "%s", centre);
        s->quantity = (int)json_integer_value(qty);
    }
    return 0;
}

static int catalog_part_parse(const catalog *c, json_t *o, catalog_part *p, const char *where) {
    if (!json_is_object(o) || catalog_string(o, "ref", p->ref, sizeof(p->ref), 1, where) != 0 ||
        catalog_string(o, "name", p->name, sizeof(p->name), 0, where) != 0 ||
        catalog_int(o, "price_cents", 0, 100000000, &p->price_cents, where) != 0 ||
        catalog_stock_parse(c, o, p, where) != 0)
        return -1;
    return 0;
}

static int catalog_fault_parts(const catalog *c, json_t *o, catalog_fault *f, const char *where) {
    json_t *parts = json_object_get(o, "parts"), *item;
    size_t i;
    if (!json_is_array(parts) || json_array_size(parts) > CATALOG_MAX_FAULT_PARTS) {
        err_set("%s: \"parts\" must be an array of at most %d entries", where, CATALOG_MAX_FAULT_PARTS);
        return -1;
    }
    json_array_foreach(parts, i, item) {
        int64_t qty;
        catalog_fault_part *fp = &f->parts[i];
        if (!json_is_object(item) || catalog_string(item, "ref", fp->ref, sizeof(fp->ref), 1, where) != 0 ||
            catalog_int(item, "qty", 1, 100, &qty, where) != 0)
            return -1;
        if (!catalog_part_find(c, fp->ref)) {
            err_set("%s: part \"%s\" is not in \"parts\"", where, fp->ref);
            return -1;
        }
        fp->quantity = (int)qty;
    }
    f->nparts = (int)json_array_size(parts);
    return 0;
}

static int catalog_fault_parse(const catalog *c, json_t *o, catalog_fault *f, const char *where) {
    int64_t minutes;
    if (!json_is_object(o) || catalog_string(o, "family", f->family, sizeof(f->family), 1, where) != 0 ||
        catalog_string(o, "code", f->code, sizeof(f->code), 1, where) != 0 ||
        catalog_string(o, "symptom", f->symptom, sizeof(f->symptom), 0, where) != 0 ||
        catalog_string(o, "cause", f->cause, sizeof(f->cause), 0, where) != 0 ||
        catalog_int(o, "labour_minutes", 0, 10000, &minutes, where) != 0 || catalog_fault_parts(c, o, f, where) != 0)
        return -1;
    f->labour_minutes = (int)minutes;
    return 0;
}

/* Parses one top-level array with parse() into a freshly allocated table. */
static int catalog_section(catalog *c, json_t *root, const char *name, size_t size, void **table, size_t *count) {
    json_t *arr = json_object_get(root, name);
    if (!json_is_array(arr) || json_array_size(arr) > CATALOG_MAX_ENTRIES) {
        err_set("catalog: \"%s\" must be an array of at most %d entries", name, CATALOG_MAX_ENTRIES);
        return -1;
    }
    *table = calloc(json_array_size(arr) + 1, size);
    if (!*table) {
        err_set("out of memory loading the catalog");
        return -1;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char where[64];
        snprintf(where, sizeof(where), "catalog %s[%zu]", name, i);
        json_t *o = json_array_get(arr, i);
        char *slot = (char *)*table + i * size;
        int rc = strcmp(name, "models") == 0    ? catalog_model_parse(o, (catalog_model *)(void *)slot, where)
                 : strcmp(name, "centres") == 0 ? catalog_centre_parse(o, (catalog_centre *)(void *)slot, where)
                 : strcmp(name, "parts") == 0   ? catalog_part_parse(c, o, (catalog_part *)(void *)slot, where)
                                                : catalog_fault_parse(c, o, (catalog_fault *)(void *)slot, where);
        if (rc != 0) return -1;
        *count = i + 1;
    }
    return 0;
}

static int catalog_check_unique(const catalog *c) {
    for (size_t i = 0; i < c->ncentres; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->centres[i].id, c->centres[j].id) == 0) {
                err_set("catalog: centre \"%s\" appears twice", c->centres[i].id);
                return -1;
            }
    for (size_t i = 0; i < c->nmodels; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->models[i].id, c->models[j].id) == 0) {
                err_set("catalog: model \"%s\" appears twice", c->models[i].id);
                return -1;
            }
    for (size_t i = 0; i < c->nparts; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->parts[i].ref, c->parts[j].ref) == 0) {
                err_set("catalog: part \"%s\" appears twice", c->parts[i].ref);
                return -1;
            }
    for (size_t i = 0; i < c->nfaults; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->faults[i].code, c->faults[j].code) == 0 &&
                strcmp(c->faults[i].family, c->faults[j].family) == 0) {
                err_set("catalog: fault code %s of %s appears twice", c->faults[i].code, c->faults[i].family);
                return -1;
            }
    return 0;
}

/* Validates a decoded catalog document; origin names it in errors. */
static catalog *catalog_build(json_t *root, const char *origin) {
    catalog *c = calloc(1, sizeof(*c));
    if (!c) {
        err_set("out of memory loading the catalog");
        return NULL;
    }
    int rc = json_is_object(root) ? 0 : -1;
    if (rc) err_set("catalog %s: the top level must be an object", origin);
    if (rc == 0) rc = catalog_section(c, root, "models", sizeof(catalog_model), (void **)&c->models, &c->nmodels);
    if (rc == 0)
        rc = catalog_section(c, root, "centres", sizeof(catalog_centre), (void **)&c->centres, &c->ncentres);
    if (rc == 0 && c->ncentres == 0) {
        err_set("catalog %s: at least one service centre is needed", origin);
        rc = -1;
    }
    if (rc == 0) rc = catalog_section(c, root, "parts", sizeof(catalog_part), (void **)&c->parts, &c->nparts);
    if (rc == 0)
        rc = catalog_section(c, root, "fault_codes", sizeof(catalog_fault), (void **)&c->faults, &c->nfaults);
    if (rc == 0) rc = catalog_check_unique(c);
    if (rc != 0) {
        catalog_free(c);
        return NULL;
    }
    return c;
}

catalog *catalog_load(const char *path) {
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        err_set("catalog %s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    catalog *c = catalog_build(root, path);
    json_decref(root);
    return c;
}

catalog *catalog_parse(const char *json, size_t len) {
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        err_set("catalog line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    catalog *c = catalog_build(root, "document");
    json_decref(root);
    return c;
}

void catalog_free(catalog *c) {
    if (!c) return;
    free(c->models);
    free(c->centres);
    free(c->parts);
    free(c->faults);
    free(c);
}

const catalog_model *catalog_model_find(const catalog *c, const char *id) {
    for (size_t i = 0; i < c->nmodels; i++)
        if (strcmp(c->models[i].id, id) == 0) return &c->models[i];
    return NULL;
}

const catalog_part *catalog_part_find(const catalog *c, const char *ref) {
    for (size_t i = 0; i < c->nparts; i++)
        if (strcmp(c->parts[i].ref, ref) == 0) return &c->parts[i];
    return NULL;
}

const catalog_fault *catalog_fault_find(const catalog *c, const char *family, const char *code) {
    for (size_t i = 0; i < c->nfaults; i++)
        if (strcmp(c->faults[i].family, family) == 0 && strcmp(c->faults[i].code, code) == 0) return &c->faults[i];
    return NULL;
}

size_t catalog_model_count(const catalog *c) {
    return c->nmodels;
}

const catalog_centre *catalog_centre_find(const catalog *c, const char *id) {
    for (size_t i = 0; i < c->ncentres; i++)
        if (strcmp(c->centres[i].id, id) == 0) return &c->centres[i];
    return NULL;
}

const catalog_centre *catalog_centre_at(const catalog *c, size_t i) {
    return i < c->ncentres ? &c->centres[i] : NULL;
}

const catalog_part *catalog_part_at(const catalog *c, size_t i) {
    return i < c->nparts ? &c->parts[i] : NULL;
}

const catalog_model *catalog_model_at(const catalog *c, size_t i) {
    return i < c->nmodels ? &c->models[i] : NULL;
}

const catalog_fault *catalog_fault_at(const catalog *c, size_t i) {
    return i < c->nfaults ? &c->faults[i] : NULL;
}
