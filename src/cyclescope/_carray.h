/*
 * _carray.h: the array plumbing shared by cyclescope._core (_core.c) and
 * cyclescope._heapalgo (_heapalgo.c), so both take and hand back arrays in
 * one way: scratch memory, int64 and byte buffer arguments (validated, with
 * the same error messages), and output array('q') objects written in place.
 *
 * Include it after Python.h (with PY_SSIZE_T_CLEAN defined).  Everything
 * here is static inline: each extension gets its own copy and neither warns
 * about a helper only the other one uses.
 */

#ifndef CYCLESCOPE_CARRAY_H
#define CYCLESCOPE_CARRAY_H

#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

/* ------------------------------------------------------------------------- */
/* Scratch memory                                                            */
/* ------------------------------------------------------------------------- */

/* The graphs of a real capture or heap have hundreds of thousands to millions
   of nodes, and the algorithms' working arrays are then tens of megabytes of
   fresh memory.  Arrays read and written at random positions (hash tables,
   per-node state of the graph algorithms) are aligned to and advised for
   transparent huge pages where Linux offers them (a no-op when THP is off):
   with 4 KiB pages nearly every access is a TLB miss, and the first touch of
   each page a page fault.  Arrays written once in order, and arrays small
   enough for the TLB's reach, get small pages (SCRATCH_SMALL_PAGES): they gain
   little, and a fault on a huge page can stall for memory compaction
   (measured on a 1M-object heap snapshot: the first snapshot of a process
   took 170 ms or, when the kernel had to compact, 330-430 ms; with only its
   hash table in huge pages, 200-250 ms nearly every time).  Scratch memory
   comes from the C allocator (so tracemalloc does not count it) and is always
   released with scratch_free. */
#define HUGE_PAGE_SIZE ((size_t)2 << 20)

/* Advise the whole huge pages inside [p, p + nbytes) (a no-op where THP is
   off; failure is harmless). */
static inline void
advise_huge_pages(void *p, size_t nbytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    uintptr_t start = ((uintptr_t)p + HUGE_PAGE_SIZE - 1) & ~(uintptr_t)(HUGE_PAGE_SIZE - 1);
    uintptr_t end = ((uintptr_t)p + nbytes) & ~(uintptr_t)(HUGE_PAGE_SIZE - 1);
    if (end > start) {
        (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
    }
#else
    (void)p;
    (void)nbytes;
#endif
}

/* Which pages a scratch array asks for (see above). */
#define SCRATCH_HUGE_PAGES 1
#define SCRATCH_SMALL_PAGES 0

static inline void *
scratch_malloc(size_t nbytes, int pages)
{
    if (nbytes == 0) {
        nbytes = 1;
    }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (pages == SCRATCH_HUGE_PAGES && nbytes >= HUGE_PAGE_SIZE) {
        void *p = NULL;
        if (posix_memalign(&p, HUGE_PAGE_SIZE, nbytes) != 0) {
            return NULL;
        }
        advise_huge_pages(p, nbytes);
        return p;
    }
#endif
    return malloc(nbytes);
}

static inline void
scratch_free(void *p)
{
    free(p);
}

/* count zeroed items of item_size bytes, or NULL with MemoryError set.  calloc
   skips the clearing when it maps fresh pages (which the kernel has zeroed), and
   the pages are then not touched until used: huge pages can still be asked for. */
static inline void *
scratch_zeroed(Py_ssize_t count, size_t item_size)
{
    size_t n = count > 0 ? (size_t)count : 1;
    void *p = NULL;
    if (n <= SIZE_MAX / item_size) {
        p = calloc(n, item_size);
    }
    if (p == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    advise_huge_pages(p, n * item_size);
    return p;
}

/* count items of item_size bytes (count < 0 counts as 0) in the pages asked
   for, or NULL with MemoryError set. */
static inline void *
scratch_block(Py_ssize_t count, size_t item_size, int pages)
{
    size_t n = count > 0 ? (size_t)count : 0;
    void *p = NULL;
    if (n <= SIZE_MAX / item_size) {
        p = scratch_malloc(n * item_size, pages);
    }
    if (p == NULL) {
        PyErr_NoMemory();
    }
    return p;
}

/* scratch_block for the usual case: a large array accessed at random positions. */
static inline void *
scratch_array(Py_ssize_t count, size_t item_size)
{
    return scratch_block(count, item_size, SCRATCH_HUGE_PAGES);
}

#define SCRATCH_N(type, count) ((type *)scratch_array((count), sizeof(type)))

/* Room for `extra` more items of item_size bytes in the scratch block *data
   (*cap items, len in use; NULL with *cap 0 for none yet), doubling it and
   copying the items over (not realloc: the new block gets the pages asked for).
   -1 with MemoryError set when it cannot grow (the block is then unchanged).
   Reserve generously where the final size can be guessed: room never touched
   costs no memory, a copy costs fresh memory twice. */
static inline int
scratch_reserve(void **data, Py_ssize_t *cap, Py_ssize_t len, Py_ssize_t extra, size_t item_size,
                int pages)
{
    if (*cap - len >= extra) {
        return 0;
    }
    Py_ssize_t grown_cap = *cap > 0 ? *cap : 64;
    while (grown_cap - len < extra) {
        if (grown_cap > PY_SSIZE_T_MAX / 2 / (Py_ssize_t)item_size) {
            PyErr_NoMemory();
            return -1;
        }
        grown_cap *= 2;
    }
    void *grown = scratch_block(grown_cap, item_size, pages);
    if (grown == NULL) {
        return -1;
    }
    if (len > 0) {
        memcpy(grown, *data, (size_t)len * item_size);
    }
    scratch_free(*data);
    *data = grown;
    *cap = grown_cap;
    return 0;
}

/* scratch_reserve for a struct with data, len and cap fields, in huge pages
   (VEC_RESERVE) or small ones (VEC_RESERVE_SMALL). */
#define VEC_RESERVE_AS(vec, extra, pages)                                         \
    ((vec)->cap - (vec)->len >= (extra)                                          \
         ? 0                                                                      \
         : scratch_reserve((void **)&(vec)->data, &(vec)->cap, (vec)->len, (extra), \
                           sizeof(*(vec)->data), (pages)))
#define VEC_RESERVE(vec, extra) VEC_RESERVE_AS(vec, extra, SCRATCH_HUGE_PAGES)
#define VEC_RESERVE_SMALL(vec, extra) VEC_RESERVE_AS(vec, extra, SCRATCH_SMALL_PAGES)


static inline int64_t *
alloc_i64(Py_ssize_t count)
{
    return SCRATCH_N(int64_t, count);
}

static inline int64_t *
alloc_i64_filled(Py_ssize_t count, int64_t value)
{
    int64_t *p = alloc_i64(count);
    if (p != NULL) {
        for (Py_ssize_t i = 0; i < count; i++) {
            p[i] = value;
        }
    }
    return p;
}

/* count flags: a copy of mask (nonzero -> 1), or all 0 when mask is NULL. */
static inline unsigned char *
alloc_mask_copy(const unsigned char *mask, Py_ssize_t count)
{
    unsigned char *p = SCRATCH_N(unsigned char, count);
    if (p != NULL) {
        if (mask == NULL) {
            if (count > 0) {
                memset(p, 0, (size_t)count);
            }
        }
        else {
            for (Py_ssize_t i = 0; i < count; i++) {
                p[i] = mask[i] != 0;
            }
        }
    }
    return p;
}

static inline unsigned char *
alloc_bytes_zeroed(Py_ssize_t count)
{
    return alloc_mask_copy(NULL, count);
}

/* ------------------------------------------------------------------------- */
/* Output arrays                                                             */
/* ------------------------------------------------------------------------- */

/* A new reference to array('q', [0]), the item q_output_new repeats, or NULL
   with an exception set.  When array_type is not NULL, *array_type gets a new
   reference to array.array (even if making the item then fails). */
static inline PyObject *
new_q_zero_item(PyObject **array_type)
{
    PyObject *array_module = PyImport_ImportModule("array");
    if (array_module == NULL) {
        return NULL;
    }
    PyObject *type = PyObject_GetAttrString(array_module, "array");
    Py_DECREF(array_module);
    if (type == NULL) {
        return NULL;
    }
    PyObject *zero_item = PyObject_CallFunction(type, "C[i]", 'q', 0);
    if (array_type != NULL) {
        *array_type = type;
    }
    else {
        Py_DECREF(type);
    }
    return zero_item;
}

/* An output array('q') of known length, written in place through data. */
typedef struct {
    PyObject *array;
    Py_buffer view;
    int has_view;
    int64_t *data;
} q_output;

/* A new array('q') of count items, all fill, made by repeating zero_item
   (from new_q_zero_item). */
static inline int
q_output_new(PyObject *zero_item, Py_ssize_t count, int64_t fill, q_output *out)
{
    memset(out, 0, sizeof(*out));
    out->array = PySequence_Repeat(zero_item, count);
    if (out->array == NULL) {
        return -1;
    }
    if (PyObject_GetBuffer(out->array, &out->view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        Py_CLEAR(out->array);
        return -1;
    }
    out->has_view = 1;
    out->data = (int64_t *)out->view.buf;
    if (fill != 0) {
        for (Py_ssize_t i = 0; i < count; i++) {
            out->data[i] = fill;
        }
    }
    return 0;
}

/* Hand over the finished array (a new reference), or drop it (take = 0). */
static inline PyObject *
q_output_finish(q_output *out, int take)
{
    PyObject *array = out->array;
    if (out->has_view) {
        PyBuffer_Release(&out->view);
        out->has_view = 0;
    }
    out->array = NULL;
    out->data = NULL;
    if (!take) {
        Py_XDECREF(array);
        return NULL;
    }
    return array;
}

/* Hand over the finished outputs as one tuple, in order (a new reference), or
   NULL with an exception set; every output is finished either way. */
static inline PyObject *
q_outputs_tuple(q_output *const outs[], Py_ssize_t count)
{
    PyObject *tuple = PyTuple_New(count);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *array = q_output_finish(outs[i], tuple != NULL);
        if (tuple != NULL) {
            PyTuple_SET_ITEM(tuple, i, array); /* steals the reference */
        }
    }
    return tuple;
}

/* ------------------------------------------------------------------------- */
/* Buffer arguments                                                          */
/* ------------------------------------------------------------------------- */

/* A read-only view of an int64 buffer argument.  data is 8-byte aligned: a
   misaligned buffer (a memoryview slice or cast can be one) is copied. */
typedef struct {
    Py_buffer view;
    int has_view;
    const int64_t *data;
    int64_t *copy;
    Py_ssize_t len;
} i64_arg;

/* Does a struct-module format string describe one native-endian 8-byte
   signed integer? */
static inline int
is_int64_format(const char *fmt)
{
    char order = '@';
    if (fmt == NULL) {
        return 0; /* NULL means unsigned bytes */
    }
    if (*fmt == '@' || *fmt == '=' || *fmt == '<' || *fmt == '>' || *fmt == '!') {
        order = *fmt++;
    }
    if (fmt[0] == '\0' || fmt[1] != '\0') {
        return 0;
    }
#if PY_LITTLE_ENDIAN
    if (order == '>' || order == '!') {
        return 0;
    }
#else
    if (order == '<') {
        return 0;
    }
#endif
    if (fmt[0] == 'q') {
        return 1;
    }
    /* 'l' is 8 bytes only with native sizes ('@'); the itemsize check catches
       the rest anyway. */
    return fmt[0] == 'l' && order == '@' && sizeof(long) == 8;
}

/* Take obj as an int64 buffer named name (for the error message); release
   with release_i64_arg, also after a failure. */
static inline int
get_i64_arg(PyObject *obj, const char *name, i64_arg *arg)
{
    memset(arg, 0, sizeof(*arg));
    if (PyObject_GetBuffer(obj, &arg->view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        return -1;
    }
    arg->has_view = 1;
    if (arg->view.ndim != 1 || arg->view.itemsize != 8 || !is_int64_format(arg->view.format)) {
        PyErr_Format(PyExc_ValueError,
                     "%s must be a one-dimensional buffer of int64 items "
                     "(such as array('q')), got format '%s'",
                     name, arg->view.format ? arg->view.format : "B");
        return -1;
    }
    arg->len = arg->view.len / 8;
    if (((uintptr_t)arg->view.buf) % sizeof(int64_t) != 0) {
        arg->copy = alloc_i64(arg->len);
        if (arg->copy == NULL) {
            return -1;
        }
        memcpy(arg->copy, arg->view.buf, (size_t)arg->len * sizeof(int64_t));
        arg->data = arg->copy;
    }
    else {
        arg->data = (const int64_t *)arg->view.buf;
    }
    return 0;
}

static inline void
release_i64_arg(i64_arg *arg)
{
    if (arg->copy != NULL) {
        scratch_free(arg->copy);
        arg->copy = NULL;
    }
    if (arg->has_view) {
        PyBuffer_Release(&arg->view);
        arg->has_view = 0;
    }
}

/* A byte buffer argument (bytes, bytearray, ...): item i is true when nonzero.
   An optional one left out or None has data = NULL. */
typedef struct {
    Py_buffer view;
    int has_view;
    const unsigned char *data;
    Py_ssize_t len;
} bytes_arg;

/* Take obj as a byte buffer named name (for the error message); release with
   release_bytes_arg, also after a failure. */
static inline int
get_bytes_arg(PyObject *obj, const char *name, bytes_arg *arg)
{
    memset(arg, 0, sizeof(*arg));
    if (PyObject_GetBuffer(obj, &arg->view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        return -1;
    }
    arg->has_view = 1;
    if (arg->view.ndim != 1 || arg->view.itemsize != 1) {
        PyErr_Format(PyExc_ValueError,
                     "%s must be a one-dimensional buffer of bytes (such as bytes or bytearray)",
                     name);
        return -1;
    }
    arg->data = (const unsigned char *)arg->view.buf;
    arg->len = arg->view.len;
    return 0;
}

/* get_bytes_arg for an optional argument: obj NULL or None gives data = NULL. */
static inline int
get_optional_bytes_arg(PyObject *obj, const char *name, bytes_arg *arg)
{
    if (obj == NULL || obj == Py_None) {
        memset(arg, 0, sizeof(*arg));
        return 0;
    }
    return get_bytes_arg(obj, name, arg);
}

static inline void
release_bytes_arg(bytes_arg *arg)
{
    if (arg->has_view) {
        PyBuffer_Release(&arg->view);
        arg->has_view = 0;
    }
}

#endif /* CYCLESCOPE_CARRAY_H */
