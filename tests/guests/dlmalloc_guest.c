// A guest built with wasi-libc, whose malloc is dlmalloc: it keeps its own
// heap (from `__heap_base` and from pages it grows with `memory.grow`) next
// to the buffers the host hands out through `cortex.alloc`. The tests check
// that the two never overlap.
//
// Built by `build.sh` beside this file; the .wasm is committed so the tests
// need no C toolchain.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

__attribute__((import_module("cortex"), import_name("alloc")))
extern void *cortex_alloc(int32_t size, int32_t align);

struct note {
    struct note *next;
    int32_t len;
    unsigned char bytes[];
};

static struct note *first = 0;
static struct note **last = &first;
static int32_t total = 0;

static int64_t pack(const void *ptr, int32_t len) {
    return ((int64_t)(uintptr_t)ptr << 32) | (uint32_t)len;
}

// Keeps a copy of the input on the guest's own heap; answers with the input.
__attribute__((export_name("remember")))
int64_t remember(unsigned char *ptr, int32_t len) {
    struct note *n = malloc(sizeof(struct note) + (size_t)len);
    if (!n) {
        __builtin_trap();
    }
    n->next = 0;
    n->len = len;
    memcpy(n->bytes, ptr, (size_t)len);
    *last = n;
    last = &n->next;
    total += len;
    return pack(ptr, len);
}

// Answers with every input remembered so far, in order, in a host buffer.
__attribute__((export_name("recall")))
int64_t recall(unsigned char *ptr, int32_t len) {
    (void)ptr;
    (void)len;
    unsigned char *out = cortex_alloc(total, 1);
    if (!out && total > 0) {
        __builtin_trap();
    }
    int32_t at = 0;
    for (struct note *n = first; n; n = n->next) {
        memcpy(out + at, n->bytes, (size_t)n->len);
        at += n->len;
    }
    return pack(out, total);
}

// Frees everything remembered (dlmalloc merges and may reuse it).
__attribute__((export_name("forget")))
int64_t forget(unsigned char *ptr, int32_t len) {
    struct note *n = first;
    while (n) {
        struct note *next = n->next;
        free(n);
        n = next;
    }
    first = 0;
    last = &first;
    total = 0;
    return pack(ptr, 0);
}
