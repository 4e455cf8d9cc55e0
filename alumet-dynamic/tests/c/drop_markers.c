/*
 * A test plugin, `c_drops`, that tells what the agent did to it: every call that matters
 * appends one line to the file named by its `markers` key (opened and closed each time,
 * so that a line is on disk even if the agent exits right after):
 *
 *     write N        the output received a buffer of N points
 *     source_drop    the source's drop_data
 *     output_drop    the output's drop_data
 *     stop           alumet_plugin_stop
 *     plugin_drop    alumet_plugin_drop
 *
 * `init` also writes the config text it receives, verbatim, to `<markers>.init.toml`,
 * and logs "c_drops: init" through the agent (its log line must carry the plugin's name).
 *
 *     [plugins.c_drops]
 *     path = "./libc_drops.so"
 *     markers = "markers.txt"      # required, the first key of the table
 *     poll_interval_ms = 10        # optional, 1000 by default
 *     write_sleep_ms = 0           # optional: each write sleeps that long first (an output
 *                                  # blocked past the shutdown deadline)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alumet.h"

static const AlumetHost *host;

typedef struct {
    char *markers;
    uint64_t poll_interval_ms;
    uint64_t write_sleep_ms;
} Plugin;

typedef struct {
    char *markers;
    uint32_t metric;
    uint64_t polls;
    uint64_t write_sleep_ms;
} Element;

uint32_t alumet_plugin_abi_version(void) { return ALUMET_ABI_VERSION; }
const char *alumet_plugin_name(void) { return "c_drops"; }
const char *alumet_plugin_version(void) { return "0.1.0"; }

static void mark(const char *path, const char *line) {
    FILE *f = fopen(path, "a");
    if (!f) return;
    fprintf(f, "%s\n", line);
    fclose(f);
}

static AlumetStatus fail(AlumetError *error, const char *message) {
    host->set_error(error, alumet_str(message));
    return ALUMET_ERROR;
}

/* The text after `key = ` at the start of a line of `config`, NULL if absent. */
static const char *value_of(const char *config, const char *key) {
    size_t n = strlen(key);
    for (const char *line = config; line && *line; line = strchr(line, '\n')) {
        while (*line == '\n') line++;
        if (strncmp(line, key, n) == 0 && strncmp(line + n, " = ", 3) == 0) return line + n + 3;
    }
    return NULL;
}

static void dump_config(const char *markers, const char *config) {
    size_t len = strlen(markers) + sizeof(".init.toml");
    char *path = malloc(len);
    if (!path) return;
    snprintf(path, len, "%s.init.toml", markers);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(config, f);
        fclose(f);
    }
    free(path);
}

AlumetStatus alumet_plugin_init(const AlumetHost *h, AlumetStr config_toml, void **plugin,
                                AlumetError *error) {
    host = h;
    host->log(ALUMET_LOG_INFO, ALUMET_STR("c_drops: init"));
    char *config = strndup(config_toml.ptr ? config_toml.ptr : "", config_toml.len);
    Plugin *p = calloc(1, sizeof(Plugin));
    if (!config || !p) {
        free(config);
        free(p);
        return fail(error, "out of memory");
    }
    p->poll_interval_ms = 1000;
    const char *interval = value_of(config, "poll_interval_ms");
    if (interval) p->poll_interval_ms = strtoull(interval, NULL, 10);
    const char *sleep_ms = value_of(config, "write_sleep_ms");
    if (sleep_ms) p->write_sleep_ms = strtoull(sleep_ms, NULL, 10);
    const char *markers = value_of(config, "markers");
    if (markers && *markers == '"') {
        const char *end = strchr(markers + 1, '"');
        if (end) p->markers = strndup(markers + 1, (size_t)(end - markers - 1));
    }
    if (!p->markers) {
        free(config);
        free(p);
        return fail(error, "c_drops: `markers` is required");
    }
    dump_config(p->markers, config);
    free(config);
    *plugin = p;
    return ALUMET_OK;
}

static AlumetStatus source_poll(void *data, AlumetAccumulator *acc, uint64_t timestamp_ns,
                                AlumetError *error) {
    (void)error;
    Element *e = data;
    AlumetPoint point = {
        .metric = e->metric,
        .value_type = ALUMET_U64,
        .timestamp_ns = timestamp_ns,
        .value_u64 = ++e->polls,
        .resource_kind = ALUMET_STR("local_machine"),
        .consumer_kind = ALUMET_STR("local_machine"),
    };
    return host->push(acc, &point);
}

static AlumetStatus output_write(void *data, AlumetBuffer *buffer, AlumetError *error) {
    (void)error;
    Element *e = data;
    if (e->write_sleep_ms) {
        struct timespec t = {(time_t)(e->write_sleep_ms / 1000),
                             (long)(e->write_sleep_ms % 1000) * 1000000L};
        nanosleep(&t, NULL);
    }
    char line[64];
    snprintf(line, sizeof line, "write %zu", host->buffer_len(buffer));
    mark(e->markers, line);
    return ALUMET_OK;
}

static void element_drop(Element *e, const char *line) {
    mark(e->markers, line);
    free(e->markers);
    free(e);
}

static void source_drop(void *data) { element_drop(data, "source_drop"); }
static void output_drop(void *data) { element_drop(data, "output_drop"); }

static Element *element(const Plugin *p) {
    Element *e = calloc(1, sizeof(Element));
    if (e) {
        e->markers = strdup(p->markers);
        e->write_sleep_ms = p->write_sleep_ms;
    }
    if (e && !e->markers) {
        free(e);
        return NULL;
    }
    return e;
}

AlumetStatus alumet_plugin_start(void *plugin, AlumetRegistrar *registrar, AlumetError *error) {
    Plugin *p = plugin;
    Element *source = element(p);
    if (!source) return fail(error, "out of memory");
    AlumetStatus s = host->create_metric(registrar, ALUMET_STR("c_drops_polls"), ALUMET_STR("1"),
                                         ALUMET_U64, ALUMET_STR("Polls."), &source->metric, error);
    if (s != ALUMET_OK) {
        element_drop(source, "source_drop (not registered)");
        return s;
    }
    s = host->add_source(registrar, ALUMET_STR("counter"), p->poll_interval_ms * 1000000u, 0,
                         source_poll, source, source_drop, error);
    if (s != ALUMET_OK) return s;
    Element *output = element(p);
    if (!output) return fail(error, "out of memory");
    return host->add_output(registrar, ALUMET_STR("markers"), output_write, NULL, output,
                            output_drop, error);
}

AlumetStatus alumet_plugin_stop(void *plugin, AlumetError *error) {
    (void)error;
    mark(((Plugin *)plugin)->markers, "stop");
    return ALUMET_OK;
}

void alumet_plugin_drop(void *plugin) {
    Plugin *p = plugin;
    mark(p->markers, "plugin_drop");
    free(p->markers);
    free(p);
}
