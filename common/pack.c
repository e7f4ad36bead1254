#include "pack.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* The dictionaries, compiled in from common/pack/dict-<id>.txt (tools/embed.sh). */
extern const char pack_dict_1[];

static const unsigned char pack_magic[4] = {'S', 'V', 'P', 'K'};

const char *pack_dictionary(int id, size_t *len) {
    if (id == 1) {
        *len = strlen(pack_dict_1);
        return pack_dict_1;
    }
    err_set("packed value: unknown dictionary %d", id);
    return NULL;
}

static void pack_put_be(unsigned char *p, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; i--, v >>= 8) p[i] = (unsigned char)(v & 0xff);
}

static uint64_t pack_get_be(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

/* Checks that digest is the payload's SHA-1 in hex; 0 or -1 with err. */
static int pack_digest_check(const char *payload, size_t len, const char *digest, uint8_t raw[SHA1_LEN]) {
    char hex[SHA1_HEX_LEN];
    sha1_digest(payload, len, raw);
    sha1_hex(raw, hex);
    if (!digest || strcmp(hex, digest) != 0) {
        err_set("packed value: the payload's SHA-1 is %s, not %.40s", hex, digest ? digest : "");
        return -1;
    }
    return 0;
}

unsigned char *pack_encode(const char *payload, size_t len, const char *digest, int64_t last_change, int dict,
                           size_t *out_len) {
    uint8_t raw[SHA1_LEN];
    size_t dict_len = 0;
    const char *dict_text = dict == PACK_DICT_NONE ? "" : pack_dictionary(dict, &dict_len);
    if (!dict_text) return NULL;
    if (len > PACK_PAYLOAD_MAX) {
        err_set("packed value: a payload of %zu bytes is more than %d", len, PACK_PAYLOAD_MAX);
        return NULL;
    }
    if (pack_digest_check(payload, len, digest, raw) != 0) return NULL;
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        err_set("packed value: deflateInit2 failed");
        return NULL;
    }
    unsigned char *out = NULL;
    if (dict_len && deflateSetDictionary(&z, (const Bytef *)dict_text, (uInt)dict_len) != Z_OK) {
        err_set("packed value: deflateSetDictionary failed");
    } else if (!(out = malloc(PACK_HEADER_LEN + deflateBound(&z, (uLong)len)))) {
        err_set("packed value: out of memory");
    } else {
        z.next_in = (Bytef *)payload, z.avail_in = (uInt)len;
        z.next_out = out + PACK_HEADER_LEN, z.avail_out = (uInt)deflateBound(&z, (uLong)len);
        if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
            err_set("packed value: deflate did not finish");
            free(out);
            out = NULL;
        }
    }
    if (out) {
        memcpy(out, pack_magic, 4);
        out[4] = PACK_VERSION, out[5] = (unsigned char)dict;
        memcpy(out + 6, raw, SHA1_LEN);
        pack_put_be(out + 26, len, 4);
        pack_put_be(out + 30, (uint64_t)last_change, 8);
        *out_len = PACK_HEADER_LEN + z.total_out;
    }
    deflateEnd(&z);
    return out;
}

int pack_header(const unsigned char *value, size_t len, pack_info *info) {
    if (!value || len < PACK_HEADER_LEN || memcmp(value, pack_magic, 4) != 0) {
        err_set("not a packed value (%zu bytes, no SVPK header)", len);
        return -1;
    }
    if (value[4] != PACK_VERSION) {
        err_set("packed value: format version %d, this build reads %d", value[4], PACK_VERSION);
        return -1;
    }
    info->version = value[4];
    info->dict = value[5];
    sha1_hex(value + 6, info->digest);
    info->payload_len = (size_t)pack_get_be(value + 26, 4);
    info->last_change = (int64_t)pack_get_be(value + 30, 8);
    if (info->payload_len > PACK_PAYLOAD_MAX) {
        err_set("packed value: a payload of %zu bytes is more than %d", info->payload_len, PACK_PAYLOAD_MAX);
        return -1;
    }
    return 0;
}

char *pack_decode(const unsigned char *value, size_t len, pack_info *info, size_t *payload_len) {
    size_t dict_len = 0;
    if (pack_header(value, len, info) != 0) return NULL;
    const char *dict_text = info->dict == PACK_DICT_NONE ? "" : pack_dictionary(info->dict, &dict_len);
    if (!dict_text) return NULL;
    char *out = malloc(info->payload_len + 1);
    if (!out) {
        err_set("packed value: out of memory");
        return NULL;
    }
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -15) != Z_OK) {
        free(out);
        err_set("packed value: inflateInit2 failed");
        return NULL;
    }
    int zrc = dict_len ? inflateSetDictionary(&z, (const Bytef *)dict_text, (uInt)dict_len) : Z_OK;
    if (zrc == Z_OK) {
        z.next_in = (Bytef *)(value + PACK_HEADER_LEN), z.avail_in = (uInt)(len - PACK_HEADER_LEN);
        z.next_out = (Bytef *)out, z.avail_out = (uInt)info->payload_len;
        zrc = inflate(&z, Z_FINISH);
    }
    int ok = zrc == Z_STREAM_END && z.total_out == info->payload_len && z.avail_in == 0;
    if (!ok)
        err_set("packed value: corrupt (%s)", zrc == Z_STREAM_END ? (z.avail_in ? "bytes after its end"
                                                                          : "shorter than its header says")
                                              : zrc == Z_BUF_ERROR ? "longer than its header says or cut"
                                                                   : z.msg ? z.msg : "inflate failed");
    inflateEnd(&z);
    uint8_t raw[SHA1_LEN];
    if (ok) out[info->payload_len] = '\0';
    if (!ok || pack_digest_check(out, info->payload_len, info->digest, raw) != 0) {
        free(out);
        return NULL;
    }
    *payload_len = info->payload_len;
    return out;
}

/* cjson writes an empty Lua table as {}: an empty list here. */
static json_t *pack_list(json_t *v) {
    if (json_is_object(v) && json_object_size(v) == 0) return json_array();
    return json_is_array(v) ? json_incref(v) : NULL;
}

/* A list of strings (pairs: of even length); NULL when v is not one. */
static json_t *pack_strings(json_t *v, int pairs) {
    json_t *l = pack_list(v);
    size_t i;
    json_t *s;
    if (l && pairs && json_array_size(l) % 2 != 0) l = (json_decref(l), NULL);
    json_array_foreach(l, i, s) if (!json_is_string(s)) {
        json_decref(l);
        return NULL;
    }
    return l;
}

/* [[id, pairs]...]; NULL when malformed. */
static json_t *pack_notifications(json_t *v) {
    json_t *l = pack_list(v), *out = l ? json_array() : NULL;
    size_t i;
    json_t *e;
    json_array_foreach(l, i, e) {
        json_t *pairs = json_is_array(e) && json_array_size(e) == 2 && json_is_string(json_array_get(e, 0))
                            ? pack_strings(json_array_get(e, 1), 1)
                            : NULL;
        if (!pairs || json_array_append_new(out, json_pack("[O,o]", json_array_get(e, 0), pairs)) != 0) {
            json_decref(out);
            out = NULL;
            break;
        }
    }
    json_decref(l);
    return out;
}

json_t *pack_parts(const char *payload, size_t len) {
    json_error_t jerr;
    json_t *p = json_loadb(payload, len, 0, &jerr);
    if (!p || !json_is_array(p) || json_array_size(p) != PACK_PARTS) {
        err_set("packed payload: %s", p ? "not the array of pack_collect" : jerr.text);
        json_decref(p);
        return NULL;
    }
    static const int pairs[PACK_PARTS] = {[PACK_TICKET] = 1, [PACK_PREDIAG] = 1, [PACK_COVERAGE] = 1,
                                          [PACK_VERDICT] = 1, [PACK_QUOTE] = 1};
    json_t *out = json_array();
    for (int i = 0; out && i < PACK_PARTS; i++) {
        json_t *part = i == PACK_NOTIFICATIONS ? pack_notifications(json_array_get(p, (size_t)i))
                                               : pack_strings(json_array_get(p, (size_t)i), pairs[i]);
        if (!part) {
            err_set("packed payload: section %d is not what pack_collect writes", i);
            json_decref(out);
            out = NULL;
        } else {
            json_array_append_new(out, part);
        }
    }
    json_decref(p);
    return out;
}

/* The value json of name in a flat name/value list, or NULL. */
static json_t *pack_pairs_find(const json_t *pairs, const char *name) {
    for (size_t i = 0; i + 1 < json_array_size(pairs); i += 2)
        if (strcmp(json_string_value(json_array_get(pairs, i)) ?: "", name) == 0) return json_array_get(pairs, i + 1);
    return NULL;
}

const char *pack_pairs_get(const json_t *pairs, const char *name) {
    return json_string_value(pack_pairs_find(pairs, name));
}

json_t *pack_merge_pairs(const json_t *packed, const json_t *live) {
    json_t *out = json_array();
    for (size_t i = 0; i + 1 < json_array_size(packed); i += 2) {
        json_t *name = json_array_get(packed, i);
        json_t *now = live ? pack_pairs_find(live, json_string_value(name) ?: "") : NULL;
        json_array_append(out, name);
        json_array_append(out, now ? now : json_array_get(packed, i + 1));
    }
    for (size_t i = 0; live && i + 1 < json_array_size(live); i += 2) {
        if (pack_pairs_find(packed, json_string_value(json_array_get(live, i)) ?: "")) continue;
        json_array_append(out, json_array_get(live, i));
        json_array_append(out, json_array_get(live, i + 1));
    }
    return out;
}
