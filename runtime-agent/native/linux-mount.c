/*
 * mount(2) and umount2(2) for the agent's overlays, in libuv's thread pool. Spawning util-linux's mount and
 * umount forks the whole daemon (about 30 ms of its main thread each, twice per container run) for what is
 * one system call. The flags and options are the ones `mount -t overlay overlay -o ... target` passes.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

/* The call's string arguments, in the JavaScript order: fstype, source, target, options; or the target alone. */
enum { FSTYPE, SOURCE, TARGET, OPTIONS, MOUNT_ARGUMENTS };

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  /* 4 for a mount, 1 for an unmount. */
  size_t count;
  char *strings[MOUNT_ARGUMENTS];
  int error;
} Request;

static void free_request(Request *request) {
  for (size_t index = 0; index < request->count; index++) free(request->strings[index]);
  free(request);
}

/* A copy of a string argument, or NULL (a TypeError pending) when it is not a string. */
static char *copy_string(napi_env env, napi_value value) {
  size_t length;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a string");
    return NULL;
  }
  char *text = malloc(length + 1);
  if (text != NULL) napi_get_value_string_utf8(env, value, text, length + 1, &length);
  return text;
}

static void execute(napi_env env, void *data) {
  (void)env;
  Request *request = data;
  char **strings = request->strings;
  int result = request->count == MOUNT_ARGUMENTS ? mount(strings[SOURCE], strings[TARGET], strings[FSTYPE], 0, strings[OPTIONS])
                                                 : umount2(strings[0], 0);
  request->error = result == 0 ? 0 : errno;
}

/* Settles the promise: undefined, or an Error whose message is strerror's and whose code is the errno's name. */
static void complete(napi_env env, napi_status status, void *data) {
  Request *request = data;
  int error = status == napi_ok ? request->error : ECANCELED;
  if (error == 0) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, request->deferred, undefined);
  } else {
    napi_value code, message, rejection;
    const char *name = strerrorname_np(error);
    napi_create_string_utf8(env, name != NULL ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, strerror(error), NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, code, message, &rejection);
    napi_reject_deferred(env, request->deferred, rejection);
  }
  napi_delete_async_work(env, request->work);
  free_request(request);
}

/* Takes `count` string arguments and queues the call; returns its promise, or NULL with an exception pending. */
static napi_value queue(napi_env env, napi_callback_info info, size_t count, const char *usage) {
  size_t argc = MOUNT_ARGUMENTS;
  napi_value argv[MOUNT_ARGUMENTS];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != count) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  Request *request = calloc(1, sizeof(Request));
  if (request == NULL) return NULL;
  request->count = count;
  for (size_t index = 0; index < count; index++)
    if ((request->strings[index] = copy_string(env, argv[index])) == NULL) {
      free_request(request);
      return NULL;
    }
  napi_value promise, name;
  napi_create_promise(env, &request->deferred, &promise);
  napi_create_string_utf8(env, "berth-mount", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, request, &request->work);
  napi_queue_async_work(env, request->work);
  return promise;
}

/* mount(fstype, source, target, options): Promise<void>. */
static napi_value Mount(napi_env env, napi_callback_info info) {
  return queue(env, info, MOUNT_ARGUMENTS, "mount takes fstype, source, target and options");
}

/* umount(target): Promise<void>. */
static napi_value Umount(napi_env env, napi_callback_info info) {
  return queue(env, info, 1, "umount takes the target");
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor functions[] = {
      {"mount", NULL, Mount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"umount", NULL, Umount, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, 2, functions);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
