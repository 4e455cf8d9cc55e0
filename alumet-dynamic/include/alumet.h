/*
 * alumet.h: the C ABI of alumet dynamic plugins, version 1.
 *
 * A dynamic plugin is a shared library (`libNAME.so`) that the agent loads at start
 * (`[plugins.NAME]` with `path = ".../libNAME.so"`, or `plugin_dirs`). It exports the
 * seven functions at the end of this file; the agent gives it a table of functions,
 * `AlumetHost`, through which it creates metrics, registers sources and outputs, pushes
 * points and reads buffers. See docs/developer/dynamic-plugins.md for the rules.
 *
 * Strings: every `AlumetStr` is UTF-8, pointer + length, not necessarily NUL-terminated
 * (`ptr` may be NULL when `len` is 0). The agent copies the strings it is given before
 * the call returns. The strings it gives (in a point read from a buffer, a metric name)
 * are borrowed: valid until the callback that received them returns, and for a point
 * until the next `buffer_get` on the same buffer.
 *
 * Memory: nothing is freed across the boundary. The plugin owns its `plugin` pointer
 * (freed by `alumet_plugin_drop`) and the `data` of its sources and outputs (freed by
 * their `drop_data`, which the agent calls exactly once, also when a registration fails).
 *
 * Threads: `init`, `start` and `stop` are called from the agent's main thread. A source's
 * `poll` and an output's `write` and `finish` may be called from any thread, but never
 * twice at the same time for the same element; different elements run at the same time
 * on different threads. `drop_data` and `alumet_plugin_drop` may run on any thread.
 *
 * Shutdown (run, exec and watch alike): each source's `drop_data` when its thread stops;
 * each output's `finish`, then its `drop_data`, once its queue is drained; then `stop`;
 * then `alumet_plugin_drop`, last. Each exactly once. An output (or source) still blocked
 * in `write` (`poll`) at the shutdown deadline is abandoned: no `finish`, and its
 * `drop_data` and `alumet_plugin_drop` come only if the call returns before the process
 * exits, which in practice it does not. Save data in `write`/`finish`, never in a drop.
 *
 * Scheduling: a poll that overruns its interval is not repeated to catch up; the next one
 * starts when it returns, the missed periods are skipped and the schedule keeps its phase.
 *
 * This header is checked by the tests of the alumet-dynamic crate: its layouts must match
 * the Rust definitions in alumet-dynamic/src/abi.rs.
 */
#ifndef ALUMET_H
#define ALUMET_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version of this header. The agent refuses a plugin built for another one. */
#define ALUMET_ABI_VERSION 1u

/* Status of a call. */
typedef int32_t AlumetStatus;
/* Success. */
#define ALUMET_OK 0
/* Failure. From `poll` or `write`: the element is stopped (the rest of the agent goes on).
   From `init` or `start`: the agent does not start. */
#define ALUMET_ERROR 1
/* From `poll` or `write` only: logged, the element keeps its schedule. */
#define ALUMET_RETRY 2
/* From `start` only: the hardware or driver the plugin needs is absent; the agent logs
   a warning with the message and runs the other plugins. */
#define ALUMET_UNAVAILABLE 3

/* Value types of metrics. */
#define ALUMET_U64 0u
#define ALUMET_F64 1u

/* Log levels for `AlumetHost.log`. */
#define ALUMET_LOG_ERROR 1u
#define ALUMET_LOG_WARN 2u
#define ALUMET_LOG_INFO 3u
#define ALUMET_LOG_DEBUG 4u
#define ALUMET_LOG_TRACE 5u

/* A UTF-8 string: pointer and length in bytes. */
typedef struct AlumetStr {
    const char *ptr;
    size_t len;
} AlumetStr;

/* An AlumetStr from a string literal. */
#define ALUMET_STR(literal) ((AlumetStr){(literal), sizeof(literal) - 1})

/* An AlumetStr from a NUL-terminated string (NULL gives the empty string). */
static inline AlumetStr alumet_str(const char *s) {
    AlumetStr r;
    r.ptr = s;
    r.len = s ? strlen(s) : 0;
    return r;
}

/* One `key = value` attribute of a point. */
typedef struct AlumetAttribute {
    AlumetStr key;
    AlumetStr value;
} AlumetAttribute;

/* A measurement point.
 *
 * Pushed by a source: `metric` is an id returned by `create_metric` of the same plugin,
 * `value_type` must be that metric's, and only the matching value field is read.
 * Resource and consumer kinds are the CSV columns: `local_machine` (or an empty kind, id
 * ignored), `cpu_package`, `cpu_core`, `dram` (numeric id), `gpu` (PCI bus id) for
 * resources; `local_machine` (or empty: the whole machine, id ignored), `process` (pid),
 * `cgroup` (path) for consumers; any other
 * kind is a custom one, with any id. `attributes` may be NULL when `attributes_len` is 0.
 *
 * Read from a buffer by an output: every field is filled; `metric` is the id of any
 * metric of the agent (`metric_name` gives its name). */
typedef struct AlumetPoint {
    uint32_t metric;
    uint32_t value_type;
    uint64_t timestamp_ns; /* nanoseconds since the Unix epoch */
    uint64_t value_u64;
    double value_f64;
    AlumetStr resource_kind;
    AlumetStr resource_id;
    AlumetStr consumer_kind;
    AlumetStr consumer_id;
    const AlumetAttribute *attributes;
    size_t attributes_len;
} AlumetPoint;

/* Opaque handles, owned by the agent, valid during the call that receives them. The
   registration functions take the `AlumetError *` of the `start` call that registers. */
typedef struct AlumetRegistrar AlumetRegistrar;
typedef struct AlumetAccumulator AlumetAccumulator;
typedef struct AlumetBuffer AlumetBuffer;
typedef struct AlumetError AlumetError;

/* A source's poll: push the points measured now into `acc`. `timestamp_ns` is the time
   of this poll. On failure, call `set_error` and return ALUMET_ERROR or ALUMET_RETRY. */
typedef AlumetStatus (*AlumetPollFn)(void *data, AlumetAccumulator *acc, uint64_t timestamp_ns,
                                     AlumetError *error);
/* An output's write: read the points of `buffer`. */
typedef AlumetStatus (*AlumetWriteFn)(void *data, AlumetBuffer *buffer, AlumetError *error);
/* An output's finish: called once after its last write, at shutdown. */
typedef AlumetStatus (*AlumetFinishFn)(void *data, AlumetError *error);
/* Frees the `data` of an element. */
typedef void (*AlumetDropFn)(void *data);

/* The functions of the agent, given to `alumet_plugin_init`. The table and its functions
   stay valid until `alumet_plugin_drop` returns: a plugin may keep the pointer. */
typedef struct AlumetHost {
    /* The agent's ALUMET_ABI_VERSION: which table this is. In version 1 it always equals
       the plugin's ALUMET_ABI_VERSION (the agent refuses any other plugin); a later agent
       that also accepts older plugins would say here which functions the table holds. */
    uint32_t abi_version;
    /* Sets the message of a failure (the last call wins); the agent copies it. */
    void (*set_error)(AlumetError *error, AlumetStr message);
    /* The message set so far (empty if none), valid until the next `set_error` on it. A
       failing `create_metric`, `add_source` or `add_output` sets its reason there. */
    AlumetStr (*error_message)(const AlumetError *error);
    /* Logs a line through the agent's logger (level: ALUMET_LOG_*). Any thread. The line's
       target is the plugin's name in the agent (the NAME of [plugins.NAME]) when logged
       during a call of the agent into the plugin; from a thread the plugin started itself,
       it is `alumet_dynamic::plugin`. */
    void (*log)(uint32_t level, AlumetStr message);
    /* Creates a metric (snake_case name, UCUM unit such as "W", "J", "1", value type
       ALUMET_U64 or ALUMET_F64) and writes its id to `*metric`. In `start` only. */
    AlumetStatus (*create_metric)(AlumetRegistrar *registrar, AlumetStr name, AlumetStr unit,
                                  uint32_t value_type, AlumetStr description, uint32_t *metric,
                                  AlumetError *error);
    /* Adds a source, polled every `poll_interval_ns` (0: only when triggered) and flushed
       every `flush_interval_ns` (0: after every poll). Takes `data` in every case: on
       failure `drop_data` (may be NULL) is called before it returns. In `start` only. */
    AlumetStatus (*add_source)(AlumetRegistrar *registrar, AlumetStr name,
                               uint64_t poll_interval_ns, uint64_t flush_interval_ns,
                               AlumetPollFn poll, void *data, AlumetDropFn drop_data,
                               AlumetError *error);
    /* Adds an output, run on its own thread (`finish` and `drop_data` may be NULL). Takes
       `data` in every case, as `add_source` does. In `start` only. */
    AlumetStatus (*add_output)(AlumetRegistrar *registrar, AlumetStr name, AlumetWriteFn write,
                               AlumetFinishFn finish, void *data, AlumetDropFn drop_data,
                               AlumetError *error);
    /* Pushes a point (copied). ALUMET_ERROR for an unknown metric, a wrong value type or
       a string that is not UTF-8: the point is dropped and the poll fails. */
    AlumetStatus (*push)(AlumetAccumulator *acc, const AlumetPoint *point);
    /* The number of points in a buffer. */
    size_t (*buffer_len)(const AlumetBuffer *buffer);
    /* Fills `*point` with the point at `index` (ALUMET_ERROR past the end). Its strings
       are valid until the next `buffer_get` on this buffer or the end of `write`. */
    AlumetStatus (*buffer_get)(AlumetBuffer *buffer, size_t index, AlumetPoint *point);
    /* The name of a metric (empty for an unknown id); valid until `write` returns. */
    AlumetStr (*metric_name)(const AlumetBuffer *buffer, uint32_t metric);
} AlumetHost;

/* ---- Exported by the plugin (all seven are required) ---- */

/* Returns ALUMET_ABI_VERSION, as the plugin saw it when it was built. Checked first. */
uint32_t alumet_plugin_abi_version(void);
/* The plugin's name (snake_case) and version: static NUL-terminated UTF-8 strings. */
const char *alumet_plugin_name(void);
const char *alumet_plugin_version(void);
/* Checks the config and creates the plugin, whose state goes to `*plugin`. Opens nothing
   yet. `config_toml` is the plugin's table without `path` and `enable` (the agent's keys:
   a plugin cannot use them), written again by the agent: `${VAR}` replaced, comments
   gone, keys sorted, plain keys first, then sub-tables as sections relative to the table
   (`[device]`), values normalised (`1.50` is `1.5`). Parse it with a TOML parser. */
AlumetStatus alumet_plugin_init(const AlumetHost *host, AlumetStr config_toml, void **plugin,
                                AlumetError *error);
/* Creates metrics and registers sources and outputs through `registrar`. */
AlumetStatus alumet_plugin_start(void *plugin, AlumetRegistrar *registrar, AlumetError *error);
/* Called at shutdown, after every queue is drained. */
AlumetStatus alumet_plugin_stop(void *plugin, AlumetError *error);
/* Frees the plugin's state. Also called after a failed `start` (not after a failed `init`). */
void alumet_plugin_drop(void *plugin);

#ifdef __cplusplus
}
#endif

#endif /* ALUMET_H */
