/*
 * An example dynamic plugin in C, `c_example`: a source that counts its polls, and an
 * output that writes one line per point it receives to a file.
 *
 *     gcc -shared -fPIC -Wall -Werror -I alumet-dynamic/include \
 *         -o libc_example.so alumet-dynamic/examples/c/example_plugin.c
 *
 *     [plugins.c_example]
 *     path = "./libc_example.so"
 *     output_path = "points.txt"   # required
 *     poll_interval_ms = 10        # optional, 1000 by default
 *
 * The tests of the agent build it with gcc and run it (app-agent/tests/dynamic_c.rs).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alumet.h"

/* The agent's functions, given to init; valid until alumet_plugin_drop. */
static const AlumetHost *host;

typedef struct {
    char *output_path;
    uint64_t poll_interval_ms;
} Plugin;

typedef struct {
    uint32_t metric;
    uint64_t polls;
} Counter;

typedef struct {
    FILE *file;
} LinesOutput;

uint32_t alumet_plugin_abi_version(void) { return ALUMET_ABI_VERSION; }
const char *alumet_plugin_name(void) { return "c_example"; }
const char *alumet_plugin_version(void) { return "1.0.0"; }

static AlumetStatus fail(AlumetError *error, const char *message) {
    host->set_error(error, alumet_str(message));
    return ALUMET_ERROR;
}

/* The text after `key = ` on a line of the config (a naive reader of the TOML text the
   agent gives: one `key = value` per line, strings without escapes). NULL if absent. */
static const char *config_value(const char *config, const char *key) {
    size_t key_len = strlen(key);
    for (const char *line = config; line && *line; line = strchr(line, '\n')) {
        while (*line == '\n') line++;
        if (strncmp(line, key, key_len) == 0 && strncmp(line + key_len, " = ", 3) == 0) {
            return line + key_len + 3;
        }
    }
    return NULL;
}

AlumetStatus alumet_plugin_init(const AlumetHost *h, AlumetStr config_toml, void **plugin,
                                AlumetError *error) {
    host = h;
    char *config = calloc(config_toml.len + 1, 1);
    if (!config) return fail(error, "out of memory");
    if (config_toml.len) memcpy(config, config_toml.ptr, config_toml.len);
    Plugin *p = calloc(1, sizeof(Plugin));
    if (!p) {
        free(config);
        return fail(error, "out of memory");
    }
    p->poll_interval_ms = 1000;
    const char *interval = config_value(config, "poll_interval_ms");
    if (interval) p->poll_interval_ms = strtoull(interval, NULL, 10);
    const char *path = config_value(config, "output_path");
    if (path && *path == '"') {
        const char *end = strchr(path + 1, '"');
        if (end) p->output_path = strndup(path + 1, (size_t)(end - path - 1));
    }
    free(config);
    if (!p->output_path) {
        free(p);
        return fail(error, "c_example: `output_path` is required: the file where its output "
                           "writes one line per point");
    }
    *plugin = p;
    return ALUMET_OK;
}

static AlumetStatus counter_poll(void *data, AlumetAccumulator *acc, uint64_t timestamp_ns,
                                 AlumetError *error) {
    (void)error;
    Counter *c = data;
    c->polls++;
    AlumetAttribute attributes[1] = {{ALUMET_STR("origin"), ALUMET_STR("c")}};
    AlumetPoint point = {
        .metric = c->metric,
        .value_type = ALUMET_U64,
        .timestamp_ns = timestamp_ns,
        .value_u64 = c->polls,
        .resource_kind = ALUMET_STR("pdu"),
        .resource_id = ALUMET_STR("outlet-1"),
        .consumer_kind = ALUMET_STR("local_machine"),
        .attributes = attributes,
        .attributes_len = 1,
    };
    return host->push(acc, &point);
}

static AlumetStatus lines_write(void *data, AlumetBuffer *buffer, AlumetError *error) {
    LinesOutput *out = data;
    size_t n = host->buffer_len(buffer);
    for (size_t i = 0; i < n; i++) {
        AlumetPoint p;
        if (host->buffer_get(buffer, i, &p) != ALUMET_OK) return fail(error, "buffer_get failed");
        AlumetStr name = host->metric_name(buffer, p.metric);
        fprintf(out->file, "%.*s %.*s %.*s ", (int)name.len, name.ptr, (int)p.resource_kind.len,
                p.resource_kind.ptr, (int)p.resource_id.len, p.resource_id.ptr);
        if (p.value_type == ALUMET_U64) {
            fprintf(out->file, "%" PRIu64 "\n", p.value_u64);
        } else {
            fprintf(out->file, "%g\n", p.value_f64);
        }
    }
    /* Flushed after every buffer, so that a reader sees the lines at once. */
    if (fflush(out->file) != 0) return fail(error, "cannot write the output file");
    return ALUMET_OK;
}

static void lines_drop(void *data) {
    LinesOutput *out = data;
    fclose(out->file);
    free(out);
}

AlumetStatus alumet_plugin_start(void *plugin, AlumetRegistrar *registrar, AlumetError *error) {
    Plugin *p = plugin;
    Counter *counter = calloc(1, sizeof(Counter));
    if (!counter) return fail(error, "out of memory");
    AlumetStatus s = host->create_metric(registrar, ALUMET_STR("c_example_polls"), ALUMET_STR("1"),
                                         ALUMET_U64, ALUMET_STR("Polls of the C example source."),
                                         &counter->metric, error);
    if (s != ALUMET_OK) {
        free(counter);
        return s;
    }
    /* From here on, the agent owns `counter` and frees it with `free`. */
    s = host->add_source(registrar, ALUMET_STR("counter"), p->poll_interval_ms * 1000000u, 0,
                         counter_poll, counter, free, error);
    if (s != ALUMET_OK) return s;
    LinesOutput *out = calloc(1, sizeof(LinesOutput));
    if (!out) return fail(error, "out of memory");
    out->file = fopen(p->output_path, "a");
    if (!out->file) {
        free(out);
        return fail(error, "c_example: cannot open output_path for writing");
    }
    return host->add_output(registrar, ALUMET_STR("lines"), lines_write, NULL, out, lines_drop, error);
}

AlumetStatus alumet_plugin_stop(void *plugin, AlumetError *error) {
    (void)plugin;
    (void)error;
    host->log(ALUMET_LOG_INFO, ALUMET_STR("c_example stopped"));
    return ALUMET_OK;
}

void alumet_plugin_drop(void *plugin) {
    Plugin *p = plugin;
    free(p->output_path);
    free(p);
}
