/*
 * cyclescope._core: C twins of the pure-Python graph functions in graph.py, and
 * of the heap snapshot in heapgraph.py.
 *
 * Every function here must return exactly what its pure-Python reference returns
 * (_build_graph_py, _scc_py, _representatives_py, _attribute_py,
 * _component_totals_py, _cycle_shapes_py, _members_py, and heapgraph's
 * _heap_graph_py); the docstrings there define the semantics and
 * tests/unit/test_graph.py and test_heapgraph.py check the two against each
 * other.  Nothing here may run user-defined Python code: references
 * are read through tp_traverse (as gc.get_referents does) and sizes only through
 * a __sizeof__ implemented in C.
 *
 * Integer arrays come in through the buffer protocol (int64 items, e.g.
 * array('q')) and go out as array('q') objects.  All graph input is validated
 * before use, so bad input raises ValueError instead of reading out of bounds.
 * The graph algorithms run no Python code at all, so the buffers they read cannot
 * change under them.
 *
 * Two functions serve capturing.py instead and have no pure twin: move_tail
 * (hands list items over without touching their reference counts) and
 * release_garbage (frees a capture's garbage as gc's delete step would).  They
 * call no Python code either, but release_garbage frees objects, and freeing
 * runs whatever the freed objects run (__del__, weakref callbacks), exactly as
 * a gc.collect() freeing them would.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_carray.h"

#if PY_VERSION_HEX < 0x030A0000
#error "cyclescope._core needs CPython 3.10 or later"
#endif

#if PY_VERSION_HEX < 0x030B0000
#include <frameobject.h> /* PyFrame_Type; Python.h declares it from 3.11 on */
#endif

/* sizeof(PyGC_Head): two machine words.  The struct itself lives in internal
   headers, so spell it out. */
#define GC_HEAD_SIZE (2 * sizeof(uintptr_t))

/* graph._GC_HEADER: what the pure-Python fallback size adds for GC types. */
#define FALLBACK_GC_HEADER 16

/* ------------------------------------------------------------------------- */
/* Module state                                                              */
/* ------------------------------------------------------------------------- */

typedef struct {
    PyObject *array_type;   /* array.array */
    PyObject *zero_item;    /* array('q', [0]), repeated to make output arrays */
    PyObject *str_sizeof;   /* interned "__sizeof__" */
    PyObject *str_frombytes; /* interned "frombytes" */
    PyObject *block_type;   /* _core._Block: see adopt_i64 */
} core_state;

static inline core_state *
get_state(PyObject *module)
{
    return (core_state *)PyModule_GetState(module);
}

/* ------------------------------------------------------------------------- */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------- */

/* A new array('q') holding a copy of data[0:count]. */
static PyObject *
make_q_array(core_state *st, const int64_t *data, Py_ssize_t count)
{
    PyObject *arr = PyObject_CallFunction(st->array_type, "C", 'q');
    if (arr == NULL || count == 0) {
        return arr;
    }
    /* frombytes copies out of a temporary memoryview over our buffer. */
    PyObject *view = PyMemoryView_FromMemory(
        (char *)data, count * (Py_ssize_t)sizeof(int64_t), PyBUF_READ);
    if (view == NULL) {
        Py_DECREF(arr);
        return NULL;
    }
    PyObject *res = PyObject_CallMethodOneArg(arr, st->str_frombytes, view);
    Py_DECREF(view);
    if (res == NULL) {
        Py_DECREF(arr);
        return NULL;
    }
    Py_DECREF(res);
    return arr;
}

/* ------------------------------------------------------------------------- */
/* Input checks                                                              */
/* ------------------------------------------------------------------------- */

/* Check that offsets cuts total items into count runs: count + 1 non-decreasing
   entries from 0 to total.  The names are for the error messages. */
static int
check_offsets(const char *name, const char *count_name, Py_ssize_t count, const i64_arg *offsets,
              const char *total_name, Py_ssize_t total)
{
    if (offsets->len != count + 1) {
        PyErr_Format(PyExc_ValueError, "%s must have %s + 1 = %zd items, not %zd",
                     name, count_name, count + 1, offsets->len);
        return -1;
    }
    const int64_t *off = offsets->data;
    if (off[0] != 0) {
        PyErr_Format(PyExc_ValueError, "%s[0] must be 0", name);
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (off[i + 1] < off[i]) {
            PyErr_Format(PyExc_ValueError, "%s must be non-decreasing (at %zd)", name, i + 1);
            return -1;
        }
    }
    if (off[count] != total) {
        PyErr_Format(PyExc_ValueError, "%s[%s] must equal %s = %zd, not %lld",
                     name, count_name, total_name, total, (long long)off[count]);
        return -1;
    }
    return 0;
}

/* Check that (offsets, targets) is a CSR graph over n nodes: offsets has n + 1
   non-decreasing entries from 0 to len(targets), every target is in [0, n). */
static int
check_csr(Py_ssize_t n, const i64_arg *offsets, const i64_arg *targets)
{
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        return -1;
    }
    if (check_offsets("offsets", "n", n, offsets, "len(targets)", targets->len) < 0) {
        return -1;
    }
    const int64_t *tg = targets->data;
    for (Py_ssize_t k = 0; k < targets->len; k++) {
        if (tg[k] < 0 || tg[k] >= n) {
            PyErr_Format(PyExc_ValueError, "targets[%zd] = %lld is not a node in [0, %zd)",
                         k, (long long)tg[k], n);
            return -1;
        }
    }
    return 0;
}

/* Check that comp has n entries, each in [0, ncomp). */
static int
check_comp(Py_ssize_t n, const i64_arg *comp, Py_ssize_t ncomp)
{
    if (comp->len != n) {
        PyErr_Format(PyExc_ValueError, "comp must have n = %zd items, not %zd", n, comp->len);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (comp->data[i] < 0 || comp->data[i] >= ncomp) {
            PyErr_Format(PyExc_ValueError, "comp[%zd] = %lld is not a component in [0, %zd)",
                         i, (long long)comp->data[i], ncomp);
            return -1;
        }
    }
    return 0;
}

/* Check that owner has n entries, each -1 (no owner) or in [0, ncomp). */
static int
check_owner(Py_ssize_t n, const i64_arg *owner, Py_ssize_t ncomp)
{
    if (owner->len != n) {
        PyErr_Format(PyExc_ValueError, "owner must have n = %zd items, not %zd", n, owner->len);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (owner->data[i] < -1 || owner->data[i] >= ncomp) {
            PyErr_Format(PyExc_ValueError,
                         "owner[%zd] = %lld is neither -1 nor a component in [0, %zd)",
                         i, (long long)owner->data[i], ncomp);
            return -1;
        }
    }
    return 0;
}

/* Check a component count.  The bound is what an array('q') can hold, and
   keeps ncomp + 1 from overflowing. */
static int
check_ncomp(Py_ssize_t ncomp)
{
    if (ncomp < 0) {
        PyErr_SetString(PyExc_ValueError, "ncomp must be >= 0");
        return -1;
    }
    if (ncomp >= PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(int64_t)) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Pointer hash map (open addressing, linear probing)                        */
/* ------------------------------------------------------------------------- */

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH_READ(addr) __builtin_prefetch((addr), 0)
#define PREFETCH_WRITE(addr) __builtin_prefetch((addr), 1)
#else
#define PREFETCH_READ(addr) ((void)(addr))
#define PREFETCH_WRITE(addr) ((void)(addr))
#endif

/* How many lookups ahead to prefetch the slot.  A lookup is one cache miss into a
   table far bigger than the caches; keeping about this many in flight turns the
   latency-bound loops of build_graph into bandwidth-bound ones. */
#define PREFETCH_AHEAD 16

typedef struct {
    const void *key; /* NULL marks an empty slot: object addresses are never NULL */
    int32_t value;
    /* Scratch for build_graph: the last source node (+ 1) that had this node as
       an edge, which deduplicates edges in the same cache line as the lookup. */
    int32_t stamp;
} map_slot;

/* Values and stamps are 32-bit to keep a slot at 16 bytes. */
#define MAP_MAX_VALUE (INT32_MAX - 1)

typedef struct {
    map_slot *slots;
    size_t mask;
    size_t used;
} ptr_map;

/* murmur3's 64-bit finalizer: every input bit affects every output bit. */
static inline uint64_t
mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    return x;
}

/* Objects are 16-byte aligned, so the low bits of an address carry nothing;
   a full 64-bit mix spreads the rest over the table. */
static inline size_t
ptr_hash(const void *p)
{
    return (size_t)mix64((uint64_t)(uintptr_t)p);
}

static inline map_slot *
map_home(const ptr_map *m, const void *key)
{
    return &m->slots[ptr_hash(key) & m->mask];
}

/* A zeroed table for at least `expected` keys at a load factor of at most 0.6. */
static int
map_init(ptr_map *m, size_t expected)
{
    size_t cap = 16;
    while (cap / 5 * 3 < expected) {
        if (cap > SIZE_MAX / 4 / sizeof(map_slot)) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    m->slots = (map_slot *)scratch_zeroed((Py_ssize_t)cap, sizeof(map_slot));
    if (m->slots == NULL) {
        return -1;
    }
    m->mask = cap - 1;
    m->used = 0;
    return 0;
}

static void
map_free(ptr_map *m)
{
    scratch_free(m->slots);
    m->slots = NULL;
}

/* The slot holding key, or NULL. */
static inline map_slot *
map_find(const ptr_map *m, const void *key)
{
    size_t i = ptr_hash(key) & m->mask;
    for (;;) {
        map_slot *s = &m->slots[i];
        if (s->key == key) {
            return s;
        }
        if (s->key == NULL) {
            return NULL;
        }
        i = (i + 1) & m->mask;
    }
}

/* The slot of key, entered with value and stamp 0 if it was not there.  The
   table must have room (map_init sized it, or map_reserve was called). */
static map_slot *
map_insert(ptr_map *m, const void *key)
{
    size_t i = ptr_hash(key) & m->mask;
    for (;;) {
        map_slot *s = &m->slots[i];
        if (s->key == key) {
            return s;
        }
        if (s->key == NULL) {
            s->key = key;
            m->used++;
            return s;
        }
        i = (i + 1) & m->mask;
    }
}

/* Store key -> value, replacing any earlier value.  The table must have room. */
static void
map_put(ptr_map *m, const void *key, int32_t value)
{
    map_insert(m, key)->value = value;
}

/* Make room for `extra` more keys, growing the table when it would pass 0.6
   full.  Slots move whole (value and stamp). */
static int
map_reserve_n(ptr_map *m, size_t extra)
{
    if (m->used + extra <= (m->mask + 1) / 5 * 3) {
        return 0;
    }
    ptr_map bigger;
    if (map_init(&bigger, m->used + extra) < 0) {
        return -1;
    }
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->slots[i].key != NULL) {
            *map_insert(&bigger, m->slots[i].key) = m->slots[i];
        }
    }
    map_free(m);
    *m = bigger;
    return 0;
}

/* Make room for one more key. */
static int
map_reserve(ptr_map *m)
{
    return map_reserve_n(m, 1);
}

/* ------------------------------------------------------------------------- */
/* safe_sizeof                                                               */
/* ------------------------------------------------------------------------- */

/* What sys.getsizeof adds to __sizeof__() for obj on this CPython version
   (_PySys_GetSizeOf): the GC header, and from 3.11 on the pre-header that holds
   the managed dict (and 3.12+ the managed weakref list). */
#if PY_VERSION_HEX >= 0x030B0000
static size_t
preheader_size(PyTypeObject *tp)
{
    size_t size = 0;
#ifndef Py_GIL_DISABLED
    if (PyType_IS_GC(tp)) {
        size += GC_HEAD_SIZE;
    }
#endif
#if PY_VERSION_HEX >= 0x030C0000
    if (PyType_HasFeature(tp, Py_TPFLAGS_PREHEADER)) {
#else
    if (PyType_HasFeature(tp, Py_TPFLAGS_MANAGED_DICT)) {
#endif
        size += 2 * sizeof(PyObject *);
    }
    return size;
}
#endif

static size_t
getsizeof_overhead(PyObject *obj)
{
#if PY_VERSION_HEX >= 0x030D0000
    /* 3.13 counts no pre-header for static (non-heap) type objects. */
    if (Py_IS_TYPE(obj, &PyType_Type)
        && !PyType_HasFeature((PyTypeObject *)obj, Py_TPFLAGS_HEAPTYPE)) {
        return 0;
    }
    return preheader_size(Py_TYPE(obj));
#elif PY_VERSION_HEX >= 0x030B0000
    return preheader_size(Py_TYPE(obj));
#else
    /* 3.10 asks the object itself (PyObject_IS_GC honours tp_is_gc). */
    return PyObject_IS_GC(obj) ? GC_HEAD_SIZE : 0;
#endif
}

#define ALL_CALL_FLAGS \
    (METH_VARARGS | METH_KEYWORDS | METH_NOARGS | METH_O | METH_CLASS | METH_STATIC \
     | METH_FASTCALL | METH_METHOD)

/* sys.getsizeof(obj), given the C descriptor `descr` that the type's MRO yields
   for __sizeof__.  Mirrors _PySys_GetSizeOf: bind the descriptor, call it, check
   the result, add the header.  The common case, a METH_NOARGS method of a type
   obj belongs to, calls the C function directly instead of building a bound
   method.  Returns -1 with an exception set where sys.getsizeof would raise,
   and -2 with OverflowError set for a size that array('q') cannot hold. */
static Py_ssize_t
c_getsizeof(PyObject *obj, PyObject *descr)
{
    PyObject *res;
    if (Py_IS_TYPE(descr, &PyMethodDescr_Type)) {
        PyMethodDef *def = ((PyMethodDescrObject *)descr)->d_method;
        if ((def->ml_flags & ALL_CALL_FLAGS) == METH_NOARGS
            && PyObject_TypeCheck(obj, PyDescr_TYPE(descr))) {
            res = def->ml_meth(obj, NULL);
            if (res == NULL && !PyErr_Occurred()) {
                PyErr_SetString(PyExc_SystemError,
                                "__sizeof__ returned NULL without an exception");
            }
            goto got_result;
        }
    }
    {
        /* Generic path, as _PyObject_LookupSpecial + call: the descriptor's
           tp_descr_get is C code (method or wrapper descriptor), and so is the
           function the bound object calls. */
        descrgetfunc get = Py_TYPE(descr)->tp_descr_get;
        PyObject *bound;
        if (get == NULL) {
            bound = Py_NewRef(descr);
        }
        else {
            bound = get(descr, obj, (PyObject *)Py_TYPE(obj));
        }
        if (bound == NULL) {
            return -1;
        }
        res = PyObject_CallNoArgs(bound);
        Py_DECREF(bound);
    }
got_result:
    if (res == NULL) {
        return -1;
    }
    Py_ssize_t size = PyLong_AsSsize_t(res);
    Py_DECREF(res);
    if (size == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "__sizeof__() should return >= 0");
        return -1;
    }
    size_t total = (size_t)size + getsizeof_overhead(obj);
    if (total > (size_t)INT64_MAX) {
        /* sys.getsizeof would return this, and array('q').append would refuse it */
        PyErr_SetString(PyExc_OverflowError, "size does not fit in a signed 64-bit integer");
        return -2; /* not to be swallowed like the errors of getsizeof itself */
    }
    return (Py_ssize_t)total;
}

/* graph.safe_sizeof: sys.getsizeof when __sizeof__ is C code, else tp_basicsize
   plus the GC header.  descr is what _PyType_Lookup finds for __sizeof__ on the
   object's type (borrowed).  Returns 0 with *out set, or -1 with an exception set. */
static int
safe_sizeof_with(PyObject *obj, PyObject *descr, int64_t *out)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (descr != NULL
        && (Py_IS_TYPE(descr, &PyMethodDescr_Type) || Py_IS_TYPE(descr, &PyWrapperDescr_Type))) {
        /* The call may in principle drop the type's last reference to descr. */
        Py_INCREF(descr);
        Py_ssize_t size = c_getsizeof(obj, descr);
        Py_DECREF(descr);
        if (size >= 0) {
            *out = (int64_t)size;
            return 0;
        }
        /* graph.py catches Exception, not BaseException. */
        if (size == -2 || !PyErr_ExceptionMatches(PyExc_Exception)) {
            return -1;
        }
        PyErr_Clear();
    }
    else if (PyErr_Occurred()) {
        return -1;
    }
    int64_t size = (int64_t)tp->tp_basicsize;
    if (PyType_IS_GC(tp)) {
        size += FALLBACK_GC_HEADER;
    }
    *out = size;
    return 0;
}

static int
safe_sizeof(core_state *st, PyObject *obj, int64_t *out)
{
    return safe_sizeof_with(obj, _PyType_Lookup(Py_TYPE(obj), st->str_sizeof), out);
}

/* The size every instance of tp has, when safe_sizeof would only ever return
   tp_basicsize plus a header that depends on the type alone: __sizeof__ is
   object.__sizeof__ (basicsize + itemsize * |ob_size|) with no item part, and
   no tp_is_gc (only type objects have one; their header depends on the object).
   Returns -1 when each object must be asked. */
static int64_t
fixed_instance_size(core_state *st, PyTypeObject *tp)
{
    PyObject *object_sizeof = _PyType_Lookup(&PyBaseObject_Type, st->str_sizeof);
    if (object_sizeof == NULL || tp->tp_itemsize != 0 || tp->tp_is_gc != NULL
        || _PyType_Lookup(tp, st->str_sizeof) != object_sizeof) {
        PyErr_Clear();
        return -1;
    }
#if PY_VERSION_HEX >= 0x030B0000
    return (int64_t)(tp->tp_basicsize + preheader_size(tp));
#else
    return (int64_t)tp->tp_basicsize + (PyType_IS_GC(tp) ? GC_HEAD_SIZE : 0);
#endif
}

/* ------------------------------------------------------------------------- */
/* build_graph                                                               */
/* ------------------------------------------------------------------------- */

/* Referents are gathered raw (as addresses) for a chunk of sources, then mapped
   to nodes in one pass that prefetches ahead.  Deferring the lookup is exact:
   the addresses are only compared with those of the listed objects, which the
   snapshot keeps alive, so even a referent freed meanwhile cannot be mistaken
   for a node. */
#define CHUNK_SOURCES 256
#define CHUNK_REFS 4096

typedef struct {
    const void **refs;
    Py_ssize_t len;
    Py_ssize_t cap;
    int out_of_memory;
} ref_buffer;

/* CPython 3.12.0-3.12.5 (gh-122695): the _asyncio module's traverse visits its
   free list of future iterators, objects already freed; gc.get_referents on it
   revives and frees them twice, which can make that list loop forever. The
   module holds only its own types and caches, never a user's cycle: it is not
   traversed at all (graph._build_graph_py does the same). */
static int
is_asyncio_module(PyObject *obj)
{
    if (!PyModule_CheckExact(obj)) {
        return 0;
    }
    PyObject *name = PyModule_GetNameObject(obj);
    if (name == NULL) {
        PyErr_Clear();
        return 0;
    }
    int result = PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "_asyncio") == 0;
    Py_DECREF(name);
    return result;
}

/* visitproc handed to tp_traverse: remember the referent's address. */
static int
gather_referent(PyObject *ref, void *arg)
{
    ref_buffer *rb = (ref_buffer *)arg;
    if (ref == NULL) {
        return 0;
    }
    if (rb->len == rb->cap) {
        Py_ssize_t cap = rb->cap * 2;
        const void **grown = NULL;
        if ((size_t)cap <= SIZE_MAX / sizeof(void *)) {
            grown = (const void **)realloc((void *)rb->refs, (size_t)cap * sizeof(void *));
        }
        if (grown == NULL) {
            rb->out_of_memory = 1;
            return -1; /* stops the traversal; tp_traverse passes this on */
        }
        rb->refs = grown;
        rb->cap = cap;
    }
    rb->refs[rb->len++] = ref;
    return 0;
}

/* gc's test for an object whose referents it can see: a GC object by
   _PyObject_IS_GC (type flag, then tp_is_gc), tracked or not, with a
   tp_traverse (gc.get_referents's test too). */
static inline int
has_traverse(PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    return PyType_IS_GC(tp) && (tp->tp_is_gc == NULL || tp->tp_is_gc(obj))
           && tp->tp_traverse != NULL;
}

/* Append obj's referents, as gc.get_referents finds them, to rb: none for an
   object gc cannot see into, nor for the _asyncio module (see
   is_asyncio_module).  -1 with an exception set when the traversal fails. */
static int
gather_referents(PyObject *obj, ref_buffer *rb)
{
    if (!has_traverse(obj) || is_asyncio_module(obj)) {
        return 0;
    }
    PyTypeObject *tp = Py_TYPE(obj);
    if (tp->tp_traverse(obj, gather_referent, rb) == 0) {
        return 0;
    }
    if (rb->out_of_memory) {
        PyErr_NoMemory();
    }
    else if (!PyErr_Occurred()) {
        PyErr_Format(PyExc_SystemError, "tp_traverse of %.100s failed", tp->tp_name);
    }
    return -1;
}

/* A growable int64 array. */
typedef struct {
    int64_t *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} i64_vec;

/* Map the gathered referents of sources first..first+count-1 (ref_end[k] is
   where the referents of source first+k end) to edges: listed objects only,
   each once per source, in visiting order. */
static int
resolve_chunk(ptr_map *index, const ref_buffer *rb, const Py_ssize_t *ref_end,
              Py_ssize_t first, Py_ssize_t count, int64_t *offsets, i64_vec *targets)
{
    /* At most one edge per referent. */
    if (VEC_RESERVE_SMALL(targets, rb->len) < 0) {
        return -1;
    }
    const void **refs = rb->refs;
    Py_ssize_t nrefs = rb->len;
    Py_ssize_t k = 0;
    for (Py_ssize_t s = 0; s < count; s++) {
        int32_t stamp = (int32_t)(first + s + 1);
        for (Py_ssize_t end = ref_end[s]; k < end; k++) {
            if (k + PREFETCH_AHEAD < nrefs) {
                PREFETCH_WRITE(map_home(index, refs[k + PREFETCH_AHEAD]));
            }
            map_slot *slot = map_find(index, refs[k]);
            if (slot != NULL && slot->stamp != stamp) {
                slot->stamp = stamp;
                targets->data[targets->len++] = slot->value;
            }
        }
        offsets[first + s + 1] = targets->len;
    }
    return 0;
}

/* The objects a function walks come as a list or tuple: -1 with TypeError
   (naming fn) for anything else. */
static int
require_objects(PyObject *arg, const char *fn)
{
    if (PyList_Check(arg) || PyTuple_Check(arg)) {
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "%s() needs a list, not %.100s", fn, Py_TYPE(arg)->tp_name);
    return -1;
}

PyDoc_STRVAR(build_graph_doc,
"build_graph(objects, /)\n--\n\n"
"Graph of references among objects:\n"
"(offsets, targets, sizes, type_ids, types, total_size).\n"
"Same result as graph._build_graph_py.");

static PyObject *
core_build_graph(PyObject *module, PyObject *arg)
{
    core_state *st = get_state(module);
    if (require_objects(arg, "build_graph") < 0) {
        return NULL;
    }
    /* No copy of the list: a copy would incref and decref every object, two
       passes of cache misses over a heap nothing else is touching.  Only a C
       __sizeof__ (the generic path of safe_sizeof) can run code that might
       change the list; after each such call the list must still have the same
       length and item array, or the build stops with RuntimeError.  An item
       replaced in place can at worst cost an edge, never a freed object: each
       object is read from the list when it is used. */
    PyObject *objects = Py_NewRef(arg);
    int is_list = PyList_Check(objects);
    Py_ssize_t n = is_list ? PyList_GET_SIZE(objects) : PyTuple_GET_SIZE(objects);
    PyObject **items = is_list ? ((PyListObject *)objects)->ob_item
                               : ((PyTupleObject *)objects)->ob_item;

    PyObject *result = NULL;
    PyObject *types = NULL;
    ptr_map index = {NULL, 0, 0};
    ptr_map type_index = {NULL, 0, 0};
    ref_buffer rb = {NULL, 0, CHUNK_REFS, 0};
    i64_vec targets = {NULL, 0, 0};
    i64_vec fixed_sizes = {NULL, 0, 0}; /* by type id: see fixed_instance_size */
    Py_ssize_t ref_end[CHUNK_SOURCES];
    q_output out_offsets, out_sizes, out_type_ids;
    memset(&out_offsets, 0, sizeof(out_offsets));
    memset(&out_sizes, 0, sizeof(out_sizes));
    memset(&out_type_ids, 0, sizeof(out_type_ids));

    if (n > MAP_MAX_VALUE) {
        PyErr_SetString(PyExc_OverflowError, "build_graph() takes at most 2**31 - 2 objects");
        goto done;
    }
    rb.refs = (const void **)scratch_array(CHUNK_REFS, sizeof(void *));
    if (rb.refs == NULL
        || q_output_new(st->zero_item, n + 1, 0, &out_offsets) < 0
        || q_output_new(st->zero_item, n, 0, &out_sizes) < 0
        || q_output_new(st->zero_item, n, 0, &out_type_ids) < 0
        || VEC_RESERVE_SMALL(&targets, n) < 0) {
        goto done;
    }
    int64_t *offsets = out_offsets.data;
    int64_t *sizes = out_sizes.data;
    int64_t *type_ids = out_type_ids.data;
    if (map_init(&index, (size_t)n) < 0 || map_init(&type_index, 8) < 0) {
        goto done;
    }
    types = PyList_New(0);
    if (types == NULL) {
        goto done;
    }

    /* A later position wins for an object listed twice, as in the dict that
       _build_graph_py builds. */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n) {
            PREFETCH_WRITE(map_home(&index, items[i + PREFETCH_AHEAD]));
        }
        map_put(&index, items[i], (int32_t)i);
    }

    offsets[0] = 0;
    Py_ssize_t chunk_first = 0;
    PyTypeObject *last_type = NULL;
    int64_t last_type_id = -1;
    int64_t last_fixed_size = -1;
    int64_t total_size = 0; /* sizes are below 2**63 each; the sum saturates */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *obj = items[i];
        PyTypeObject *tp = Py_TYPE(obj);

        if (gather_referents(obj, &rb) < 0) {
            goto done;
        }
        ref_end[i - chunk_first] = rb.len;

        if (tp != last_type) {
            map_slot *slot = map_find(&type_index, tp);
            if (slot != NULL) {
                last_type_id = slot->value;
            }
            else {
                last_type_id = PyList_GET_SIZE(types);
                if (map_reserve(&type_index) < 0 || PyList_Append(types, (PyObject *)tp) < 0
                    || VEC_RESERVE_SMALL(&fixed_sizes, 1) < 0) {
                    goto done;
                }
                map_put(&type_index, tp, (int32_t)last_type_id);
                fixed_sizes.data[fixed_sizes.len++] = fixed_instance_size(st, tp);
            }
            last_type = tp;
            last_fixed_size = fixed_sizes.data[last_type_id];
        }
        type_ids[i] = last_type_id;

        if (last_fixed_size >= 0) {
            sizes[i] = last_fixed_size;
        }
        else {
            Py_INCREF(obj);
            int failed = safe_sizeof(st, obj, &sizes[i]) < 0;
            Py_DECREF(obj);
            if (failed) {
                goto done;
            }
            if (is_list && (PyList_GET_SIZE(objects) != n
                            || ((PyListObject *)objects)->ob_item != items)) {
                PyErr_SetString(PyExc_RuntimeError, "build_graph(): the list changed during the call");
                goto done;
            }
        }
        total_size = sizes[i] > INT64_MAX - total_size ? INT64_MAX : total_size + sizes[i];

        if (rb.len >= CHUNK_REFS || i - chunk_first + 1 == CHUNK_SOURCES || i + 1 == n) {
            if (resolve_chunk(&index, &rb, ref_end, chunk_first, i - chunk_first + 1, offsets,
                              &targets) < 0) {
                goto done;
            }
            chunk_first = i + 1;
            rb.len = 0;
        }
    }

    PyObject *a_targets = make_q_array(st, targets.data, targets.len);
    if (a_targets != NULL) {
        PyObject *a_offsets = q_output_finish(&out_offsets, 1);
        PyObject *a_sizes = q_output_finish(&out_sizes, 1);
        PyObject *a_type_ids = q_output_finish(&out_type_ids, 1);
        PyObject *total = PyLong_FromLongLong(total_size);
        if (total != NULL && a_offsets != NULL && a_sizes != NULL && a_type_ids != NULL) {
            result = PyTuple_Pack(6, a_offsets, a_targets, a_sizes, a_type_ids, types, total);
        }
        Py_XDECREF(total);
        Py_XDECREF(a_offsets);
        Py_XDECREF(a_sizes);
        Py_XDECREF(a_type_ids);
        Py_DECREF(a_targets);
    }

done:
    q_output_finish(&out_offsets, 0);
    q_output_finish(&out_sizes, 0);
    q_output_finish(&out_type_ids, 0);
    Py_XDECREF(types);
    map_free(&index);
    map_free(&type_index);
    scratch_free((void *)rb.refs);
    scratch_free(targets.data);
    scratch_free(fixed_sizes.data);
    Py_DECREF(objects);
    return result;
}

/* ------------------------------------------------------------------------- */
/* release_garbage, move_tail                                                */
/* ------------------------------------------------------------------------- */

/* Both functions hand list items over instead of copying them: a copy costs an
   incref and a decref per object, each a cache miss on an object nothing else
   is touching.  In the builds with a GIL (3.10-3.13) a list's ob_item is a
   PyMem block of `allocated` slots, as list_resize and list_clear manage it, so
   the items can change hands by moving pointers.  The free-threaded build frees
   item arrays through QSBR and splits and defers reference counts: there both
   functions keep to the public API, and release_garbage clears nothing. */


#ifndef Py_GIL_DISABLED

/* In release_garbage's map, a slot's stamp is gc's gc_refs: the references to
   the object not yet explained by the list or by the objects in the set.  Its
   value is the object's position in uniq, or OUTSIDE for an object that only
   objects in the set were seen to refer to so far (see join). */
#define REFS_EXTERNAL INT32_MAX /* too many to count, or not to be cleared: never counted down */
#define OUTSIDE (-1)

/* Referents are looked up in batches, prefetching ahead as build_graph does. */
#define RELEASE_BATCH 1024

typedef struct {
    ptr_map map;
    PyObject **uniq;     /* the set: the distinct listed objects in list order, then
                            the joined ones; one reference held to each */
    Py_ssize_t nuniq;
    Py_ssize_t cap;
    int can_grow;        /* 0 after an allocation failed: join no more */
    Py_ssize_t referenced; /* objects of the set whose stamp is above zero */
    unsigned char *kept;   /* per object of the set: 1 = leave intact */
    Py_ssize_t nkept;
    PyObject **stack;    /* kept objects whose referents are still to mark */
    Py_ssize_t depth;
    const void *batch[RELEASE_BATCH];
    Py_ssize_t nbatch;
} release_state;

/* Whether weak references to obj exist.  tp_weaklistoffset locates the list
   head; from 3.12 on it is negative for a managed weakref list, which sits in
   the pre-header, and the same obj + offset finds it (static builtin types
   keep theirs elsewhere, but they are immortal, and checked before this). */
static inline int
has_weakrefs(PyObject *obj)
{
    Py_ssize_t offset = Py_TYPE(obj)->tp_weaklistoffset;
    if (offset == 0) {
        return 0;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (offset < 0) {
        return 1; /* no such layout before 3.12: assume the worst */
    }
#endif
    return *(PyObject **)((char *)obj + offset) != NULL;
}

/* The count an object starts from, less the one reference (the list's, or the
   referring object's) that brought it here.  Read before anything runs that
   could change it. */
static int32_t
initial_refs(PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
#if PY_VERSION_HEX >= 0x030C0000
    /* An immortal object's count is a marker, not a count. */
    if (_Py_IsImmortal(obj)) {
        return REFS_EXTERNAL;
    }
#endif
    /* gc never clears an object with a legacy finalizer, nor what it reaches
       (they end up in gc.garbage): keeping them as if referenced from outside
       does the same. */
    if (tp->tp_del != NULL) {
        return REFS_EXTERNAL;
    }
    /* gc runs every finalizer before it clears anything, so __del__ never sees
       a cleared object, and clears the weak references to what it will clear,
       so no callback can reach a cleared object through one.  Every object of
       a DEBUG_SAVEALL list went through both; one that did not is left alone,
       for a full collection. */
    if (tp->tp_finalize != NULL && !PyObject_GC_IsFinalized(obj)) {
        return REFS_EXTERNAL;
    }
    if (has_weakrefs(obj)) {
        return REFS_EXTERNAL;
    }
    Py_ssize_t refs = Py_REFCNT(obj) - 1;
    /* Too many to count in 32 bits: certainly referenced from outside, since
       at most the references that really exist are counted down. */
    return refs < (Py_ssize_t)REFS_EXTERNAL ? (int32_t)refs : REFS_EXTERNAL;
}

/* An object outside the list that only objects of the set refer to joins the
   set: it is garbage if they are.  A capture's store misses such objects when
   they were made after the collection that found the rest: on 3.11+ an
   instance's __dict__ comes into being when something first asks for it (the
   report's labels do), and it refers to what the instance's attributes
   hold.  Unless it joins, those look referenced from outside, and nothing of
   the cycle could be cleared.  A joined object is held like a listed one. */
static void
join(release_state *rs, map_slot *slot)
{
    if (rs->nuniq == rs->cap) {
        Py_ssize_t cap = rs->cap * 2;
        PyObject **grown = NULL;
        if (rs->can_grow && cap <= MAP_MAX_VALUE) {
            grown = (PyObject **)realloc(rs->uniq, (size_t)cap * sizeof(PyObject *));
        }
        if (grown == NULL) {
            /* Not joined: what it refers to stays referenced from outside. */
            rs->can_grow = 0;
            return;
        }
        rs->uniq = grown;
        rs->cap = cap;
    }
    PyObject *obj = (PyObject *)slot->key;
    Py_INCREF(obj);
    slot->value = (int32_t)rs->nuniq;
    rs->uniq[rs->nuniq++] = obj;
}

/* Count down the referents gathered in the batch that are in the map; enter
   the other GC objects as outside objects, and join those whose references
   are now all explained. */
static void
subtract_batch(release_state *rs)
{
    const void **batch = rs->batch;
    Py_ssize_t n = rs->nbatch;
    for (Py_ssize_t k = 0; k < n; k++) {
        if (k + PREFETCH_AHEAD < n) {
            PREFETCH_WRITE(map_home(&rs->map, batch[k + PREFETCH_AHEAD]));
        }
        PyObject *ref = (PyObject *)batch[k];
        map_slot *slot = map_find(&rs->map, ref);
        if (slot != NULL) {
            /* Never below zero: only a tp_traverse that reports references its
               object does not own could get there (gc asserts against that). */
            if (slot->stamp > 0 && slot->stamp != REFS_EXTERNAL && --slot->stamp == 0) {
                if (slot->value == OUTSIDE) {
                    join(rs, slot);
                }
                else {
                    rs->referenced--;
                }
            }
            continue;
        }
        if (!rs->can_grow || !has_traverse(ref)) {
            continue;
        }
        if (rs->map.used >= MAP_MAX_VALUE || map_reserve(&rs->map) < 0) {
            PyErr_Clear();
            rs->can_grow = 0;
            continue;
        }
        slot = map_insert(&rs->map, ref);
        slot->value = OUTSIDE;
        slot->stamp = initial_refs(ref);
        if (slot->stamp == 0) {
            join(rs, slot);
        }
    }
    rs->nbatch = 0;
}

static int
visit_subtract(PyObject *ref, void *arg)
{
    release_state *rs = (release_state *)arg;
    if (ref != NULL) {
        if (rs->nbatch == RELEASE_BATCH) {
            subtract_batch(rs);
        }
        rs->batch[rs->nbatch++] = ref;
    }
    return 0;
}

/* Mark the referents gathered in the batch that are in the set as kept, and
   push those newly marked.  An object is pushed at most once, so the stack
   never holds more than the set. */
static void
mark_batch(release_state *rs)
{
    const void **batch = rs->batch;
    Py_ssize_t n = rs->nbatch;
    for (Py_ssize_t k = 0; k < n; k++) {
        if (k + PREFETCH_AHEAD < n) {
            PREFETCH_READ(map_home(&rs->map, batch[k + PREFETCH_AHEAD]));
        }
        map_slot *slot = map_find(&rs->map, batch[k]);
        if (slot != NULL && slot->value != OUTSIDE && !rs->kept[slot->value]) {
            rs->kept[slot->value] = 1;
            rs->nkept++;
            rs->stack[rs->depth++] = rs->uniq[slot->value];
        }
    }
    rs->nbatch = 0;
}

static int
visit_mark(PyObject *ref, void *arg)
{
    release_state *rs = (release_state *)arg;
    if (ref != NULL) {
        if (rs->nbatch == RELEASE_BATCH) {
            mark_batch(rs);
        }
        rs->batch[rs->nbatch++] = ref;
    }
    return 0;
}

#endif /* !Py_GIL_DISABLED */

PyDoc_STRVAR(release_garbage_doc,
"release_garbage(objects, /)\n--\n\n"
"Free the cyclic garbage in the list objects as gc's delete step would, and\n"
"empty the list: (cleared, kept).\n"
"\n"
"The set examined is the listed objects, plus any other GC object that only\n"
"objects of the set refer to.  An object of the set referenced from outside\n"
"it (references found with tp_traverse, as gc does), and everything it\n"
"reaches in the set, is kept intact; so is an object with a legacy tp_del, a\n"
"finalizer that has not run or live weak references, and all it reaches.\n"
"Every other object\n"
"is released in list order: tp_clear is called on it when it has one and\n"
"something still refers to it, then the reference held to it goes, so that\n"
"reference counting frees it as gc would.  cleared counts the tp_clear\n"
"calls; kept the objects left intact, some of which a full collection may\n"
"still free.  Objects are never untracked.  The free-threaded build only\n"
"empties the list (everything is kept).");

static PyObject *
core_release_garbage(PyObject *module, PyObject *arg)
{
    (void)module;
    if (!PyList_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "release_garbage() needs a list, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(arg);
    if (n == 0) {
        return Py_BuildValue("(nn)", (Py_ssize_t)0, (Py_ssize_t)0);
    }
#ifdef Py_GIL_DISABLED
    /* Deferred reference counts make the arithmetic below unsound here. */
    if (PyList_SetSlice(arg, 0, n, NULL) < 0) {
        return NULL;
    }
    return Py_BuildValue("(nn)", (Py_ssize_t)0, n);
#else
    if (n > MAP_MAX_VALUE) {
        PyErr_SetString(PyExc_OverflowError, "release_garbage() takes at most 2**31 - 2 objects");
        return NULL;
    }
    release_state rs;
    memset(&rs, 0, sizeof(rs));
    /* What must not fail comes first: on error the list is untouched.  Later
       allocations only make the result more conservative when they fail. */
    if (map_init(&rs.map, (size_t)n) < 0) {
        return NULL;
    }
    rs.uniq = (PyObject **)malloc((size_t)n * sizeof(PyObject *));
    if (rs.uniq == NULL) {
        map_free(&rs.map);
        return PyErr_NoMemory();
    }
    rs.cap = n;
    rs.can_grow = 1;

    /* Take over the list's references, as list_clear would before dropping
       them: the list is empty from here on, and these references keep every
       listed object alive until its turn in (d), whatever code runs
       meanwhile.  Taking them before the traversals also makes a list that
       holds itself report no referents, which are counted as the list's
       already. */
    PyListObject *list = (PyListObject *)arg;
    PyObject **items = list->ob_item;
    list->ob_item = NULL;
    Py_SET_SIZE(list, 0);
    list->allocated = 0;

    /* (a) The distinct objects, each counted from its reference count less
       the list's references to it (an object may be listed more than once). */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n) {
            PREFETCH_WRITE(map_home(&rs.map, items[i + PREFETCH_AHEAD]));
            PREFETCH_READ(items[i + PREFETCH_AHEAD]);
        }
        PyObject *obj = items[i];
        size_t h = ptr_hash(obj) & rs.map.mask;
        for (;;) {
            map_slot *slot = &rs.map.slots[h];
            if (slot->key == obj) {
                /* A repeat: drop this reference now (the first one still
                   holds the object), so that one is held per object. */
                if (slot->stamp > 0 && slot->stamp != REFS_EXTERNAL && --slot->stamp == 0) {
                    rs.referenced--;
                }
                Py_DECREF(obj);
                break;
            }
            if (slot->key == NULL) {
                slot->key = obj;
                slot->value = (int32_t)rs.nuniq;
                slot->stamp = initial_refs(obj);
                rs.referenced += slot->stamp > 0;
                rs.map.used++;
                rs.uniq[rs.nuniq++] = obj;
                break;
            }
            h = (h + 1) & rs.map.mask;
        }
    }
    PyMem_Free(items);

    /* (b) Less the references from within the set: what is left comes from
       outside (gc's subtract_refs).  The loop also visits the objects that
       join the set meanwhile.  tp_traverse runs no Python code, and nothing is
       freed before (d). */
    for (Py_ssize_t i = 0; i < rs.nuniq; i++) {
        if (i + PREFETCH_AHEAD < rs.nuniq) {
            PREFETCH_READ(rs.uniq[i + PREFETCH_AHEAD]);
        }
        PyObject *obj = rs.uniq[i];
        if (has_traverse(obj)) {
            (void)Py_TYPE(obj)->tp_traverse(obj, visit_subtract, &rs);
        }
        if (i + 1 == rs.nuniq) {
            subtract_batch(&rs); /* may join more */
        }
    }
    Py_ssize_t nuniq = rs.nuniq;

    /* (c) Keep what is referenced from outside, and everything it reaches in
       the set (gc's move_unreachable): nothing, usually.  Without the memory
       to mark, keep it all. */
    int keep_all = 0;
    if (rs.referenced > 0) {
        rs.kept = alloc_bytes_zeroed(nuniq);
        rs.stack = (PyObject **)scratch_array(nuniq, sizeof(PyObject *));
        if (rs.kept == NULL || rs.stack == NULL) {
            PyErr_Clear();
            keep_all = 1;
            rs.nkept = nuniq;
        }
    }
    if (rs.kept != NULL && rs.stack != NULL) {
        for (size_t s = 0; s <= rs.map.mask; s++) {
            map_slot *slot = &rs.map.slots[s];
            if (slot->key != NULL && slot->value != OUTSIDE && slot->stamp > 0) {
                rs.kept[slot->value] = 1;
                rs.nkept++;
                rs.stack[rs.depth++] = rs.uniq[slot->value];
            }
        }
        while (rs.depth > 0 || rs.nbatch > 0) {
            if (rs.depth == 0) {
                mark_batch(&rs);
                continue;
            }
            PyObject *obj = rs.stack[--rs.depth];
            if (has_traverse(obj)) {
                (void)Py_TYPE(obj)->tp_traverse(obj, visit_mark, &rs);
            }
        }
    }
    map_free(&rs.map);
    scratch_free(rs.stack);

    /* (d) Clear the rest (gc's delete_garbage), and let go of each object
       right after its turn: what was cleared, or is referenced by nothing but
       this function any more, is freed by reference counting there and then.
       Such an object needs no tp_clear: freeing it drops its references, and
       that is how gc too frees most of a cycle once tp_clear broke it, while
       the freed memory is still in cache.  An object not yet reached is still
       held here, so nothing this frees, and no code it runs (__del__ of other
       objects, weakref callbacks), can free it under the loop; that reference
       plays the part of gc's Py_INCREF around tp_clear.  Like gc, an object
       whose clear fails is reported, not retried. */
    Py_ssize_t cleared = 0;
    for (Py_ssize_t i = 0; i < nuniq; i++) {
        if (i + PREFETCH_AHEAD < nuniq) {
            PREFETCH_READ(rs.uniq[i + PREFETCH_AHEAD]);
        }
        PyObject *obj = rs.uniq[i];
        if (!keep_all && (rs.kept == NULL || !rs.kept[i]) && Py_REFCNT(obj) > 1) {
            inquiry clear = Py_TYPE(obj)->tp_clear;
            /* Without tp_clear (a tuple, say), an object goes when what it is
               in a cycle with is cleared. */
            if (clear != NULL && has_traverse(obj)) {
                (void)clear(obj);
                if (PyErr_Occurred()) {
                    PyErr_WriteUnraisable((PyObject *)Py_TYPE(obj));
                }
                cleared++;
            }
        }
        Py_DECREF(obj);
    }
    if (PyErr_Occurred()) { /* not expected of a deallocator, but never returned */
        PyErr_WriteUnraisable(arg);
    }
    free(rs.uniq);
    scratch_free(rs.kept);
    return Py_BuildValue("(nn)", cleared, rs.nkept);
#endif
}

PyDoc_STRVAR(move_tail_doc,
"move_tail(src, base, dst, /)\n--\n\n"
"Move src[base:] to the end of dst and truncate src to base: the same as\n"
"dst.extend(src[base:]); del src[base:], but the references change hands\n"
"instead of being copied.  A base past the end moves nothing.  Returns how\n"
"many items moved.");

static PyObject *
core_move_tail(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *src, *dst;
    Py_ssize_t base;
    if (!PyArg_ParseTuple(args, "O!nO!:move_tail", &PyList_Type, &src, &base, &PyList_Type,
                          &dst)) {
        return NULL;
    }
    if (src == dst) {
        PyErr_SetString(PyExc_ValueError, "move_tail() needs two different lists");
        return NULL;
    }
    if (base < 0) {
        PyErr_SetString(PyExc_ValueError, "base must be >= 0");
        return NULL;
    }
    Py_ssize_t len = PyList_GET_SIZE(src);
    if (base >= len) {
        return PyLong_FromSsize_t(0);
    }
    Py_ssize_t count = len - base;
#ifdef Py_GIL_DISABLED
    PyObject *tail = PyList_GetSlice(src, base, len);
    if (tail == NULL) {
        return NULL;
    }
    Py_ssize_t dlen = PyList_GET_SIZE(dst);
    int failed = PyList_SetSlice(dst, dlen, dlen, tail) < 0
                 || PyList_SetSlice(src, base, len, NULL) < 0;
    Py_DECREF(tail);
    if (failed) {
        return NULL;
    }
#else
    PyListObject *s = (PyListObject *)src;
    PyListObject *d = (PyListObject *)dst;
    Py_ssize_t dlen = Py_SIZE(d);
    if (dlen == 0 && base == 0) {
        /* All of src into an empty dst: swap the item arrays. */
        PyObject **items = d->ob_item;
        Py_ssize_t allocated = d->allocated;
        d->ob_item = s->ob_item;
        d->allocated = s->allocated;
        Py_SET_SIZE(d, count);
        s->ob_item = items;
        s->allocated = allocated;
        Py_SET_SIZE(s, 0);
        return PyLong_FromSsize_t(count);
    }
    if (count > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(PyObject *) - dlen) {
        return PyErr_NoMemory();
    }
    Py_ssize_t newlen = dlen + count;
    if (newlen > d->allocated) {
        /* list_resize's over-allocation, so that appending keeps its cost. */
        size_t want = ((size_t)newlen + ((size_t)newlen >> 3) + 6) & ~(size_t)3;
        if (want > (size_t)PY_SSIZE_T_MAX / sizeof(PyObject *)) {
            want = (size_t)newlen;
        }
        PyObject **grown = (PyObject **)PyMem_Realloc(d->ob_item, want * sizeof(PyObject *));
        if (grown == NULL) {
            return PyErr_NoMemory();
        }
        d->ob_item = grown;
        d->allocated = (Py_ssize_t)want;
    }
    memcpy(d->ob_item + dlen, s->ob_item + base, (size_t)count * sizeof(PyObject *));
    Py_SET_SIZE(d, newlen);
    Py_SET_SIZE(s, base);
    /* Give back what src no longer needs, as list_resize would. */
    if (base == 0) {
        PyMem_Free(s->ob_item);
        s->ob_item = NULL;
        s->allocated = 0;
    }
    else if (base < s->allocated / 2) {
        size_t want = ((size_t)base + ((size_t)base >> 3) + 6) & ~(size_t)3;
        PyObject **shrunk = (PyObject **)PyMem_Realloc(s->ob_item, want * sizeof(PyObject *));
        if (shrunk != NULL) { /* else keep the larger block: still valid */
            s->ob_item = shrunk;
            s->allocated = (Py_ssize_t)want;
        }
    }
#endif
    return PyLong_FromSsize_t(count);
}

/* ------------------------------------------------------------------------- */
/* heap_snapshot                                                             */
/* ------------------------------------------------------------------------- */

/* heap_snapshot holds no reference to the objects it traverses: until the
   closure is complete and every reference count read, it runs no code that
   could free one.  Traversal and lookups run nothing; the sizes asked on the
   way come from the __sizeof__ of core types (below), which only compute;
   and the collector is off, so that no allocation (the size's int, an
   exception) can start a collection.  Objects whose __sizeof__ is any other C
   code are sized at the end, each held meanwhile. */

/* A growable byte array. */
typedef struct {
    unsigned char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} byte_vec;

/* Per type: a size every instance has (>= 0), or how to ask the object. */
#define SIZE_ASK_NOW (-1)   /* a core type's __sizeof__: computes, runs nothing */
#define SIZE_ASK_LATER (-2) /* any other: once the closure is done, object held */

/* The types whose own __sizeof__ (a METH_NOARGS method) only computes a number
   from the object's fields. */
static int
is_core_sizeof_owner(PyTypeObject *owner)
{
    return owner == &PyBaseObject_Type || owner == &PyList_Type || owner == &PyDict_Type
           || owner == &PyUnicode_Type || owner == &PyLong_Type || owner == &PySet_Type
           || owner == &PyFrozenSet_Type || owner == &PyByteArray_Type || owner == &PyType_Type
           || owner == &PyCode_Type || owner == &PyFrame_Type || owner == &PyGen_Type
           || owner == &PyCoro_Type || owner == &PyAsyncGen_Type || owner == &PyODict_Type;
}

/* How to size the instances of tp; for SIZE_ASK_NOW also the __sizeof__
   descriptor to ask (borrowed: nothing can change the type meanwhile). */
static int64_t
heap_size_kind(core_state *st, PyTypeObject *tp, PyObject **descr_out)
{
    int64_t fixed = fixed_instance_size(st, tp);
    if (fixed >= 0) {
        return fixed;
    }
    /* c_getsizeof's direct path, for every instance of tp */
    PyObject *descr = _PyType_Lookup(tp, st->str_sizeof);
    *descr_out = descr;
    if (descr != NULL && Py_IS_TYPE(descr, &PyMethodDescr_Type)) {
        PyMethodDef *def = ((PyMethodDescrObject *)descr)->d_method;
        PyTypeObject *owner = PyDescr_TYPE(descr);
        if ((def->ml_flags & ALL_CALL_FLAGS) == METH_NOARGS && is_core_sizeof_owner(owner)
            && PyType_IsSubtype(tp, owner)) {
            return SIZE_ASK_NOW;
        }
    }
    PyErr_Clear();
    return SIZE_ASK_LATER;
}

/* What heap_close knows of a type, by type id. */
typedef struct {
    int64_t size_kind;        /* see heap_size_kind */
    PyObject *sizeof_descr;   /* for SIZE_ASK_NOW */
} heap_type_info;

typedef struct {
    heap_type_info *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} type_info_vec;

/* Finding a referent's node.  Every GC object has two words before it that gc
   owns (PyGC_Head): the next and previous links of the generation list it is
   in (next is 0 when untracked).  While the snapshot is taken nothing runs
   that tracks, untracks, frees or collects an object, so no code reads a
   previous link: the build saves each GC node's, stores the node number in
   its place, and puts every saved link back before anything else can run (on
   every path out, errors included).  Finding a GC referent's node is then a
   read next to the object, the memory gc's own traversal touches, where a
   hash table lookup was a cache miss into a table as large as the heap.
   Objects gc does not manage (str, int, bytes, ...) go through the pointer
   map.  A stored number is tagged with bit 2, which no link has: list heads
   and objects are at least 8-byte aligned, and links keep their flags in bits
   0 and 1 (kept in the tagged word too).  Free-threaded builds keep no such
   links: there every node goes through the map. */
#if SIZEOF_VOID_P == 8 && !defined(Py_GIL_DISABLED)
#define HEAP_NODE_TAGS 1
#else
#define HEAP_NODE_TAGS 0
#endif

typedef struct {
    uintptr_t next;
    uintptr_t prev;
} gc_links;

#define GC_LINKS(obj) ((gc_links *)(obj) - 1)
#define NODE_TAG ((uintptr_t)4)
#define NODE_TAG_SHIFT 3
#define LINK_FLAGS ((uintptr_t)3)
#define NOT_TAGGED UINTPTR_MAX /* in saved_links: a node gc does not manage */

/* gc's _PyObject_IS_GC: a GC type, and for a type object a heap type. */
static inline int
is_gc_object(PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    return PyType_IS_GC(tp) && (tp->tp_is_gc == NULL || tp->tp_is_gc(obj));
}

/* Per node, what building its edges needs, at random positions. */
typedef struct {
    int32_t stamp;     /* the last source (node + 1) with an edge to it: dedup */
    int32_t accounted; /* references to it explained so far, less its reference
                          count once traversed (but see type_nodes); saturates */
} node_state;

typedef struct {
    node_state *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} node_state_vec;

typedef struct {
    uintptr_t *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} uptr_vec;

/* A reference count as subtracted from node_state.accounted: a count beyond
   this is more than any heap's edges can explain (an immortal object's). */
#define MAX_COUNTED_REFS ((int64_t)1 << 30)

/* Only the index is in huge pages (see _carray.h): the arrays are written in
   order, but for state, read at random and 8 bytes a node. */
typedef struct {
    ptr_map index;       /* address -> node, for nodes gc does not manage */
    i64_vec nodes;       /* node -> address */
    node_state_vec state;
    uptr_vec saved_links; /* node -> its previous link (NOT_TAGGED: no GC object) */
    int tags_out;        /* tagged links wait to be put back */
    i64_vec offsets;     /* n + 1 entries once every node is traversed */
    i64_vec targets;
    i64_vec type_ids;
    i64_vec sizes;       /* SIZE_ASK_LATER until asked */
    byte_vec tracked;
    i64_vec later;       /* nodes to size at the end */
    i64_vec type_nodes;  /* nodes that are type objects */
    Py_ssize_t held;     /* later[0:held] hold a reference */
} heap_build;

/* Let go of the objects held for their sizes. */
static void
heap_build_release(heap_build *hb)
{
    for (Py_ssize_t k = 0; k < hb->held; k++) {
        PyObject *obj = (PyObject *)(uintptr_t)hb->nodes.data[hb->later.data[k]];
        Py_DECREF(obj);
    }
    hb->held = 0;
}

/* Put back every previous link the build replaced with a node number. */
static void
heap_untag(heap_build *hb)
{
    if (!hb->tags_out) {
        return;
    }
    for (Py_ssize_t i = 0; i < hb->saved_links.len; i++) {
        if (i + PREFETCH_AHEAD < hb->saved_links.len
            && hb->saved_links.data[i + PREFETCH_AHEAD] != NOT_TAGGED) {
            PREFETCH_WRITE(GC_LINKS((PyObject *)(uintptr_t)hb->nodes.data[i + PREFETCH_AHEAD]));
        }
        uintptr_t link = hb->saved_links.data[i];
        if (link != NOT_TAGGED) {
            GC_LINKS((PyObject *)(uintptr_t)hb->nodes.data[i])->prev = link;
        }
    }
    hb->tags_out = 0;
}

static void
heap_build_free(heap_build *hb)
{
    heap_untag(hb);
    heap_build_release(hb);
    map_free(&hb->index);
    scratch_free(hb->nodes.data);
    scratch_free(hb->state.data);
    scratch_free(hb->saved_links.data);
    scratch_free(hb->offsets.data);
    scratch_free(hb->targets.data);
    scratch_free(hb->type_ids.data);
    scratch_free(hb->sizes.data);
    scratch_free(hb->tracked.data);
    scratch_free(hb->later.data);
    scratch_free(hb->type_nodes.data);
}

/* A scratch array handed to Python without a copy: the block owns the
   memory and frees it with itself; Python sees it through a read-only
   memoryview of int64 items.  For a heap of a million objects the copies into
   array('q') were about 80 MB of fresh memory, whose first touch cost more than
   the copying. */
typedef struct {
    PyObject_HEAD
    int64_t *data;
    Py_ssize_t len; /* items */
    Py_ssize_t itemsize;
} i64_block;

static int
i64_block_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    i64_block *block = (i64_block *)self;
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError, "a heap snapshot's arrays are read-only");
        view->obj = NULL;
        return -1;
    }
    view->buf = block->data;
    view->obj = Py_NewRef(self);
    view->len = block->len * block->itemsize;
    view->readonly = 1;
    view->itemsize = block->itemsize;
    view->format = (flags & PyBUF_FORMAT) ? "q" : NULL;
    view->ndim = 1;
    view->shape = (flags & PyBUF_ND) ? &block->len : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? &block->itemsize : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    return 0;
}

static void
i64_block_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    scratch_free(((i64_block *)self)->data);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyType_Slot i64_block_slots[] = {
    {Py_tp_dealloc, i64_block_dealloc},
    {Py_bf_getbuffer, i64_block_getbuffer},
    {Py_tp_doc, "Memory of a heap snapshot's array (seen through a memoryview)."},
    {0, NULL},
};

static PyType_Spec i64_block_spec = {
    .name = "cyclescope._core._Block",
    .basicsize = sizeof(i64_block),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = i64_block_slots,
};

/* A read-only memoryview of vec[0:count]; vec's scratch memory now belongs to
   it (and vec->data is NULL), or is freed on failure. */
static PyObject *
adopt_i64(core_state *st, i64_vec *vec, Py_ssize_t count)
{
    i64_block *block = PyObject_New(i64_block, (PyTypeObject *)st->block_type);
    if (block == NULL) {
        scratch_free(vec->data);
        vec->data = NULL;
        return NULL;
    }
    block->data = vec->data; /* (PyObject_New took the reference to the heap type) */
    block->len = count;
    block->itemsize = (Py_ssize_t)sizeof(int64_t);
    vec->data = NULL;
    PyObject *view = PyMemoryView_FromObject((PyObject *)block);
    Py_DECREF(block);
    return view;
}

/* A new node for obj, whose previous link (if a GC object) is `link`, and
   which gc tracks or not. */
static int64_t
heap_new_node(heap_build *hb, PyObject *obj, uintptr_t link, int tracked)
{
    if (hb->nodes.len >= MAP_MAX_VALUE) {
        PyErr_SetString(PyExc_OverflowError, "heap_snapshot() takes at most 2**31 - 2 nodes");
        return -1;
    }
    if (VEC_RESERVE_SMALL(&hb->nodes, 1) < 0 || VEC_RESERVE_SMALL(&hb->state, 1) < 0
        || VEC_RESERVE_SMALL(&hb->saved_links, 1) < 0 || VEC_RESERVE_SMALL(&hb->tracked, 1) < 0) {
        return -1;
    }
    int64_t node = hb->nodes.len;
    hb->nodes.data[hb->nodes.len++] = (int64_t)(uintptr_t)obj;
    hb->state.data[hb->state.len++] = (node_state){0, 0};
    hb->saved_links.data[hb->saved_links.len++] = link;
    hb->tracked.data[hb->tracked.len++] = (unsigned char)tracked;
    return node;
}

/* obj's node, made if obj was no node yet; counts one more explained
   reference to it.  -1 with an exception when the tables cannot grow, or past
   the 32-bit limit of node ids. */
static inline int64_t
heap_node_of(heap_build *hb, PyObject *obj)
{
    int64_t node;
#if HEAP_NODE_TAGS
    if (is_gc_object(obj)) {
        gc_links *links = GC_LINKS(obj);
        uintptr_t link = links->prev;
        if (link & NODE_TAG) {
            node = (int64_t)(link >> NODE_TAG_SHIFT);
        }
        else {
            /* (PyObject_GC_IsTracked, without the call: linked in a list) */
            node = heap_new_node(hb, obj, link, links->next != 0);
            if (node < 0) {
                return -1;
            }
            hb->tags_out = 1;
            links->prev = ((uintptr_t)node << NODE_TAG_SHIFT) | NODE_TAG | (link & LINK_FLAGS);
        }
        goto count;
    }
#endif
    if (hb->index.used >= (hb->index.mask + 1) / 5 * 3 && map_reserve(&hb->index) < 0) {
        return -1;
    }
    size_t used = hb->index.used;
    map_slot *slot = map_insert(&hb->index, obj);
    if (hb->index.used != used) {
        node = heap_new_node(hb, obj, NOT_TAGGED, !HEAP_NODE_TAGS && PyObject_GC_IsTracked(obj));
        if (node < 0) {
            return -1;
        }
        slot->value = (int32_t)node;
    }
    node = slot->value;
#if HEAP_NODE_TAGS
count:
#endif
    if (hb->state.data[node].accounted < INT32_MAX) {
        hb->state.data[node].accounted++;
    }
    return node;
}

/* Prefetching for lookups `ahead` positions on, in two steps: first the
   object (its type tells whether it is a GC object), then half way its links
   or, for any other object, its map slot. */
static inline void
heap_prefetch_lookup(const heap_build *hb, const void *const *refs, Py_ssize_t k, Py_ssize_t nrefs)
{
#if HEAP_NODE_TAGS
    if (k + PREFETCH_AHEAD < nrefs) {
        PREFETCH_READ(refs[k + PREFETCH_AHEAD]);
    }
    if (k + PREFETCH_AHEAD / 2 < nrefs) {
        PyObject *ref = (PyObject *)refs[k + PREFETCH_AHEAD / 2];
        if (is_gc_object(ref)) {
            PREFETCH_WRITE(GC_LINKS(ref));
        }
        else {
            PREFETCH_WRITE(map_home(&hb->index, ref));
        }
    }
#else
    if (k + PREFETCH_AHEAD < nrefs) {
        PREFETCH_WRITE(map_home(&hb->index, refs[k + PREFETCH_AHEAD]));
    }
#endif
}

/* resolve_chunk for the snapshot: every referent is a node (new ones appended
   in visiting order), edges are deduplicated per source, references counted
   with multiplicity. */
static int
heap_resolve_chunk(heap_build *hb, const ref_buffer *rb, const Py_ssize_t *ref_end,
                   Py_ssize_t first, Py_ssize_t count)
{
    if (VEC_RESERVE_SMALL(&hb->targets, rb->len) < 0) {
        return -1;
    }
    const void **refs = rb->refs;
    Py_ssize_t nrefs = rb->len;
    Py_ssize_t k = 0;
    int64_t *targets = hb->targets.data;
    Py_ssize_t ntargets = hb->targets.len;
    for (Py_ssize_t s = 0; s < count; s++) {
        int32_t stamp = (int32_t)(first + s + 1);
        for (Py_ssize_t end = ref_end[s]; k < end; k++) {
            heap_prefetch_lookup(hb, refs, k, nrefs);
            int64_t node = heap_node_of(hb, (PyObject *)refs[k]);
            if (node < 0) {
                hb->targets.len = ntargets;
                return -1;
            }
            node_state *state = &hb->state.data[node];
            if (state->stamp != stamp) {
                state->stamp = stamp;
                targets[ntargets++] = node;
            }
        }
        hb->offsets.data[first + s + 1] = ntargets;
    }
    hb->targets.len = ntargets;
    return 0;
}

/* Traverse nodes from hb->offsets.len - 1 on until every node is traversed:
   edges, type ids, tracked flags, reference counts, and the sizes that can be
   asked now. */
static int
heap_close(core_state *st, heap_build *hb, PyObject *seed_list, PyObject *types, ptr_map *type_index,
           type_info_vec *type_info, int64_t *total_size)
{
    ref_buffer rb = {NULL, 0, CHUNK_REFS, 0};
    Py_ssize_t ref_end[CHUNK_SOURCES];
    PyTypeObject *last_type = NULL;
    int64_t last_type_id = -1;
    heap_type_info last_info = {SIZE_ASK_LATER, NULL};
    int result = -1;

    rb.refs = (const void **)scratch_array(CHUNK_REFS, sizeof(void *));
    if (rb.refs == NULL) {
        return -1;
    }
    Py_ssize_t processed = hb->offsets.len - 1;
    while (processed < hb->nodes.len) {
        Py_ssize_t first = processed;
        Py_ssize_t known = hb->nodes.len;
        Py_ssize_t count = 0;
        if (VEC_RESERVE_SMALL(&hb->offsets, CHUNK_SOURCES) < 0
            || VEC_RESERVE_SMALL(&hb->type_ids, CHUNK_SOURCES) < 0
            || VEC_RESERVE_SMALL(&hb->sizes, CHUNK_SOURCES) < 0) {
            goto done;
        }
        rb.len = 0;
        while (processed < known && count < CHUNK_SOURCES && rb.len < CHUNK_REFS) {
            if (processed + PREFETCH_AHEAD < known) {
                PREFETCH_READ((const void *)(uintptr_t)hb->nodes.data[processed + PREFETCH_AHEAD]);
            }
            PyObject *obj = (PyObject *)(uintptr_t)hb->nodes.data[processed];
            PyTypeObject *tp = Py_TYPE(obj);
            /* The seed list's references are the seeds' (counted as they were
               entered): when a node, it is a leaf. */
            if (obj != seed_list && gather_referents(obj, &rb) < 0) {
                goto done;
            }
            ref_end[count] = rb.len;

            if (tp != last_type) {
                map_slot *slot = map_find(type_index, tp);
                if (slot != NULL) {
                    last_type_id = slot->value;
                }
                else {
                    last_type_id = PyList_GET_SIZE(types);
                    if (map_reserve(type_index) < 0 || PyList_Append(types, (PyObject *)tp) < 0
                        || VEC_RESERVE(type_info, 1) < 0) {
                        goto done;
                    }
                    map_put(type_index, tp, (int32_t)last_type_id);
                    heap_type_info *info = &type_info->data[type_info->len++];
                    info->sizeof_descr = NULL;
                    info->size_kind = heap_size_kind(st, tp, &info->sizeof_descr);
                }
                last_type = tp;
                last_info = type_info->data[last_type_id];
            }
            /* Nothing changes the count of a non-type object until the end
               (the types list refers to types), so it is read while at hand. */
            if (PyType_Check(obj)) {
                if (VEC_RESERVE(&hb->type_nodes, 1) < 0) {
                    goto done;
                }
                hb->type_nodes.data[hb->type_nodes.len++] = processed;
            }
            else {
                int64_t refs = (int64_t)Py_REFCNT(obj);
                hb->state.data[processed].accounted -= (int32_t)(refs < MAX_COUNTED_REFS ? refs : MAX_COUNTED_REFS);
            }
            int64_t size = last_info.size_kind;
            if (size == SIZE_ASK_NOW && safe_sizeof_with(obj, last_info.sizeof_descr, &size) < 0) {
                goto done;
            }
            if (size == SIZE_ASK_LATER) {
                if (VEC_RESERVE(&hb->later, 1) < 0) {
                    goto done;
                }
                hb->later.data[hb->later.len++] = processed;
            }
            else {
                *total_size = size > INT64_MAX - *total_size ? INT64_MAX : *total_size + size;
            }
            hb->sizes.data[hb->sizes.len++] = size;
            hb->type_ids.data[hb->type_ids.len++] = last_type_id;
            processed++;
            count++;
        }
        if (heap_resolve_chunk(hb, &rb, ref_end, first, count) < 0) {
            goto done;
        }
        hb->offsets.len += count;
    }
    result = 0;
done:
    scratch_free((void *)rb.refs);
    return result;
}

PyDoc_STRVAR(heap_snapshot_doc,
"heap_snapshot(seeds, /)\n--\n\n"
"The graph of seeds and everything they reach through tp_traverse:\n"
"(addresses, type_ids, types, sizes, offsets, targets, external, tracked,\n"
"total_size).  Same result as heapgraph._heap_graph_py.");

static PyObject *
core_heap_snapshot(PyObject *module, PyObject *arg)
{
    core_state *st = get_state(module);
    if (require_objects(arg, "heap_snapshot") < 0) {
        return NULL;
    }
    Py_ssize_t nseeds = PySequence_Fast_GET_SIZE(arg);
    PyObject **items = PySequence_Fast_ITEMS(arg);

    PyObject *result = NULL;
    heap_build hb;
    memset(&hb, 0, sizeof(hb));
    ptr_map type_index = {NULL, 0, 0};
    type_info_vec type_info = {NULL, 0, 0};
    PyObject *b_external = NULL;
    int64_t total_size = 0; /* sizes are below 2**63 each; the sum saturates */
    PyObject *types = PyList_New(0);
    /* Nothing may run from here until every reference count is read. */
    int gc_was_enabled = PyGC_Disable();

    /* Heaps reach about half as many untracked objects as tracked ones, and
       hold three to five references per object.  Room reserved but never
       touched costs no memory, while growing an array copies it into fresh
       memory: reserve generously. */
    Py_ssize_t expected = nseeds < PY_SSIZE_T_MAX / 32 ? nseeds * 2 + 1024 : nseeds;
    /* With node tags the map holds what gc does not manage: about half. */
    Py_ssize_t expected_in_map = HEAP_NODE_TAGS ? expected / 4 : expected;
    if (types == NULL || map_init(&hb.index, (size_t)expected_in_map) < 0
        || map_init(&type_index, 64) < 0 || VEC_RESERVE_SMALL(&hb.nodes, expected) < 0
        || VEC_RESERVE_SMALL(&hb.state, expected) < 0 || VEC_RESERVE_SMALL(&hb.saved_links, expected) < 0
        || VEC_RESERVE_SMALL(&hb.offsets, expected + 1) < 0
        || VEC_RESERVE_SMALL(&hb.type_ids, expected) < 0 || VEC_RESERVE_SMALL(&hb.sizes, expected) < 0
        || VEC_RESERVE_SMALL(&hb.tracked, expected) < 0 || VEC_RESERVE_SMALL(&hb.targets, expected * 4) < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < nseeds; i++) {
        heap_prefetch_lookup(&hb, (const void *const *)items, i, nseeds);
        /* Each listed reference is the seed list's, explained. */
        if (heap_node_of(&hb, items[i]) < 0) {
            goto done;
        }
    }
    hb.offsets.data[hb.offsets.len++] = 0;
    int closed = heap_close(st, &hb, arg, types, &type_index, &type_info, &total_size);
    heap_untag(&hb);
    if (closed < 0) {
        goto done;
    }
    Py_ssize_t n = hb.nodes.len;

    /* External: more references than the explained ones (and for a type, the
       types list's).  Making a bytearray runs nothing: it is no GC object. */
    b_external = PyByteArray_FromStringAndSize(NULL, n);
    if (b_external == NULL) {
        goto done;
    }
    unsigned char *external = (unsigned char *)PyByteArray_AS_STRING(b_external);
    for (Py_ssize_t i = 0; i < n; i++) {
        external[i] = hb.state.data[i].accounted < 0;
    }
    for (Py_ssize_t k = 0; k < hb.type_nodes.len; k++) {
        int64_t i = hb.type_nodes.data[k];
        PyObject *obj = (PyObject *)(uintptr_t)hb.nodes.data[i];
        int64_t refs = (int64_t)Py_REFCNT(obj);
        if (map_find(&type_index, obj) != NULL) {
            refs--;
        }
        external[i] = refs > hb.state.data[i].accounted;
    }
    map_free(&hb.index);
    scratch_free(hb.state.data);
    hb.state.data = NULL;
    scratch_free(hb.saved_links.data);
    hb.saved_links.data = NULL;

    if (gc_was_enabled) {
        PyGC_Enable();
        gc_was_enabled = 0;
    }
    /* The snapshot is taken.  Sizes that may run code come last, and hold
       their objects, which nothing else here touches any more. */
    for (; hb.held < hb.later.len; hb.held++) {
        PyObject *obj = (PyObject *)(uintptr_t)hb.nodes.data[hb.later.data[hb.held]];
        Py_INCREF(obj);
    }
    for (Py_ssize_t k = 0; k < hb.later.len; k++) {
        int64_t node = hb.later.data[k];
        int64_t *size = &hb.sizes.data[node];
        if (safe_sizeof(st, (PyObject *)(uintptr_t)hb.nodes.data[node], size) < 0) {
            goto done;
        }
        total_size = *size > INT64_MAX - total_size ? INT64_MAX : total_size + *size;
    }
    heap_build_release(&hb);

    PyObject *a_targets = adopt_i64(st, &hb.targets, hb.targets.len);
    PyObject *a_offsets = a_targets ? adopt_i64(st, &hb.offsets, n + 1) : NULL;
    PyObject *a_addresses = a_offsets ? adopt_i64(st, &hb.nodes, n) : NULL;
    PyObject *a_sizes = a_addresses ? adopt_i64(st, &hb.sizes, n) : NULL;
    PyObject *a_type_ids = a_sizes ? adopt_i64(st, &hb.type_ids, n) : NULL;
    PyObject *b_tracked = a_type_ids ? PyByteArray_FromStringAndSize((const char *)hb.tracked.data, n) : NULL;
    PyObject *total = b_tracked ? PyLong_FromLongLong(total_size) : NULL;
    if (total != NULL) {
        result = PyTuple_Pack(9, a_addresses, a_type_ids, types, a_sizes, a_offsets, a_targets,
                              b_external, b_tracked, total);
    }
    Py_XDECREF(a_addresses);
    Py_XDECREF(a_type_ids);
    Py_XDECREF(a_sizes);
    Py_XDECREF(a_offsets);
    Py_XDECREF(a_targets);
    Py_XDECREF(b_tracked);
    Py_XDECREF(total);

done:
    heap_untag(&hb); /* first: nothing may run with links tagged */
    if (gc_was_enabled) {
        PyGC_Enable();
    }
    map_free(&type_index);
    scratch_free(type_info.data);
    Py_XDECREF(b_external);
    Py_XDECREF(types);
    heap_build_free(&hb);
    return result;
}

/* ------------------------------------------------------------------------- */
/* scc                                                                       */
/* ------------------------------------------------------------------------- */

PyDoc_STRVAR(scc_doc,
"scc(n, offsets, targets, /)\n--\n\n"
"Strongly connected components: (comp, ncomp, cyclic). Same result as graph._scc_py.");

static PyObject *
core_scc(PyObject *module, PyObject *args)
{
    core_state *st = get_state(module);
    Py_ssize_t n;
    PyObject *o_offsets, *o_targets;
    if (!PyArg_ParseTuple(args, "nOO:scc", &n, &o_offsets, &o_targets)) {
        return NULL;
    }
    i64_arg offsets_arg, targets_arg;
    memset(&offsets_arg, 0, sizeof(offsets_arg));
    memset(&targets_arg, 0, sizeof(targets_arg));
    PyObject *result = NULL;
    int64_t *index = NULL, *low = NULL, *raw = NULL, *stack = NULL;
    int64_t *work_v = NULL, *work_pos = NULL, *renumber = NULL, *size = NULL;
    unsigned char *on_stack = NULL;
    q_output out_comp;
    memset(&out_comp, 0, sizeof(out_comp));

    if (get_i64_arg(o_offsets, "offsets", &offsets_arg) < 0
        || get_i64_arg(o_targets, "targets", &targets_arg) < 0
        || check_csr(n, &offsets_arg, &targets_arg) < 0
        || q_output_new(st->zero_item, n, 0, &out_comp) < 0) {
        goto done;
    }
    const int64_t *off = offsets_arg.data;
    const int64_t *tg = targets_arg.data;

    index = alloc_i64_filled(n, -1);
    low = alloc_i64(n);
    raw = alloc_i64(n);  /* component in order of completion */
    stack = alloc_i64(n);
    work_v = alloc_i64(n);   /* explicit DFS stack: node and next edge */
    work_pos = alloc_i64(n);
    on_stack = alloc_bytes_zeroed(n);
    if (!index || !low || !raw || !stack || !work_v || !work_pos || !on_stack) {
        goto done;
    }

    /* Iterative Tarjan, step for step the loop of _scc_py. */
    int64_t counter = 0, ncomp = 0;
    Py_ssize_t sp = 0; /* Tarjan stack height */
    for (int64_t root = 0; root < n; root++) {
        if (index[root] != -1) {
            continue;
        }
        Py_ssize_t wp = 0; /* DFS stack height */
        work_v[wp] = root;
        work_pos[wp] = off[root];
        wp++;
        index[root] = low[root] = counter++;
        stack[sp++] = root;
        on_stack[root] = 1;
        while (wp > 0) {
            int64_t v = work_v[wp - 1];
            int64_t pos = work_pos[wp - 1];
            int64_t end = off[v + 1];
            int pushed = 0;
            while (pos < end) {
                int64_t w = tg[pos++];
                if (index[w] == -1) {
                    work_pos[wp - 1] = pos;
                    index[w] = low[w] = counter++;
                    stack[sp++] = w;
                    on_stack[w] = 1;
                    work_v[wp] = w;
                    work_pos[wp] = off[w];
                    wp++;
                    pushed = 1;
                    break;
                }
                if (on_stack[w] && index[w] < low[v]) {
                    low[v] = index[w];
                }
            }
            if (pushed) {
                continue;
            }
            wp--;
            if (wp > 0) {
                int64_t parent = work_v[wp - 1];
                if (low[v] < low[parent]) {
                    low[parent] = low[v];
                }
            }
            if (low[v] == index[v]) {
                int64_t w;
                do {
                    w = stack[--sp];
                    on_stack[w] = 0;
                    raw[w] = ncomp;
                } while (w != v);
                ncomp++;
            }
        }
    }

    /* Renumber components by their smallest node, then mark the cyclic ones
       (more than one node, or a self-loop). */
    renumber = alloc_i64_filled(ncomp, -1);
    size = alloc_i64_filled(ncomp, 0);
    if (!renumber || !size) {
        goto done;
    }
    int64_t *comp = out_comp.data;
    int64_t next_id = 0;
    for (int64_t node = 0; node < n; node++) {
        int64_t r = raw[node];
        if (renumber[r] == -1) {
            renumber[r] = next_id++;
        }
        comp[node] = renumber[r];
        size[comp[node]]++;
    }
    PyObject *cyclic = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)ncomp);
    if (cyclic == NULL) {
        goto done;
    }
    char *cy = PyByteArray_AS_STRING(cyclic);
    memset(cy, 0, (size_t)ncomp);
    for (int64_t node = 0; node < n; node++) {
        int64_t c = comp[node];
        if (size[c] > 1) {
            cy[c] = 1;
            continue;
        }
        for (int64_t pos = off[node]; pos < off[node + 1]; pos++) {
            if (tg[pos] == node) {
                cy[c] = 1;
                break;
            }
        }
    }
    result = Py_BuildValue("(NLN)", q_output_finish(&out_comp, 1), (long long)ncomp, cyclic);

done:
    q_output_finish(&out_comp, 0);
    release_i64_arg(&offsets_arg);
    release_i64_arg(&targets_arg);
    scratch_free(index);
    scratch_free(low);
    scratch_free(raw);
    scratch_free(stack);
    scratch_free(work_v);
    scratch_free(work_pos);
    scratch_free(on_stack);
    scratch_free(renumber);
    scratch_free(size);
    return result;
}

/* ------------------------------------------------------------------------- */
/* representative_cycles                                                     */
/* ------------------------------------------------------------------------- */

PyDoc_STRVAR(representative_cycles_doc,
"representative_cycles(n, offsets, targets, comp, ncomp, cyclic_bytes, rank, /)\n--\n\n"
"One shortest cycle per cyclic component: (starts, nodes, edges).\n"
"Same result as graph._representatives_py.");

static PyObject *
core_representative_cycles(PyObject *module, PyObject *args)
{
    core_state *st = get_state(module);
    Py_ssize_t n, ncomp;
    PyObject *o_offsets, *o_targets, *o_comp, *o_cyclic, *o_rank;
    if (!PyArg_ParseTuple(args, "nOOOnOO:representative_cycles", &n, &o_offsets, &o_targets,
                          &o_comp, &ncomp, &o_cyclic, &o_rank)) {
        return NULL;
    }
    i64_arg offsets_arg, targets_arg, comp_arg, rank_arg;
    bytes_arg cyclic_arg;
    memset(&offsets_arg, 0, sizeof(offsets_arg));
    memset(&targets_arg, 0, sizeof(targets_arg));
    memset(&comp_arg, 0, sizeof(comp_arg));
    memset(&rank_arg, 0, sizeof(rank_arg));
    memset(&cyclic_arg, 0, sizeof(cyclic_arg));
    PyObject *result = NULL;
    int64_t *best = NULL, *nodes = NULL, *edges = NULL;
    q_output out_starts;
    memset(&out_starts, 0, sizeof(out_starts));
    int64_t *mark = NULL, *parent = NULL, *parent_pos = NULL, *queue = NULL;

    if (get_i64_arg(o_offsets, "offsets", &offsets_arg) < 0
        || get_i64_arg(o_targets, "targets", &targets_arg) < 0
        || get_i64_arg(o_comp, "comp", &comp_arg) < 0
        || get_bytes_arg(o_cyclic, "cyclic_bytes", &cyclic_arg) < 0
        || get_i64_arg(o_rank, "rank", &rank_arg) < 0
        || check_csr(n, &offsets_arg, &targets_arg) < 0) {
        goto done;
    }
    if (ncomp < 0) {
        PyErr_SetString(PyExc_ValueError, "ncomp must be >= 0");
        goto done;
    }
    if (check_comp(n, &comp_arg, ncomp) < 0) {
        goto done;
    }
    if (cyclic_arg.len != ncomp) {
        PyErr_Format(PyExc_ValueError, "cyclic_bytes must have ncomp = %zd items, not %zd",
                     ncomp, cyclic_arg.len);
        goto done;
    }
    if (rank_arg.len != n) {
        PyErr_Format(PyExc_ValueError, "rank must have n = %zd items, not %zd", n, rank_arg.len);
        goto done;
    }
    const int64_t *off = offsets_arg.data;
    const int64_t *tg = targets_arg.data;
    const int64_t *comp = comp_arg.data;
    const int64_t *rank = rank_arg.data;
    const unsigned char *cyclic = cyclic_arg.data;

    if (q_output_new(st->zero_item, ncomp + 1, 0, &out_starts) < 0) {
        goto done;
    }
    int64_t *starts = out_starts.data;
    best = alloc_i64_filled(ncomp, -1);
    /* Components are disjoint and each cycle is a simple path inside its
       component, so all cycles together hold at most n nodes. */
    nodes = alloc_i64(n);
    edges = alloc_i64(n);
    /* BFS state shared by all components.  mark[v] == c + 1 means v was
       reached in the BFS of component c, so nothing is cleared between
       components; parent/parent_pos are valid only where mark says so. */
    mark = alloc_i64_filled(n, 0);
    parent = alloc_i64(n);
    parent_pos = alloc_i64(n);
    queue = alloc_i64(n);
    if (!best || !nodes || !edges || !mark || !parent || !parent_pos || !queue) {
        goto done;
    }

    /* Best-ranked candidate of each cyclic component; ties go to the smaller node. */
    for (int64_t node = 0; node < n; node++) {
        int64_t c = comp[node];
        if (cyclic[c] && rank[node] >= 0) {
            int64_t b = best[c];
            if (b == -1 || rank[node] < rank[b]) {
                best[c] = node;
            }
        }
    }

    int64_t total = 0;
    starts[0] = 0;
    for (int64_t c = 0; c < ncomp; c++) {
        int64_t start = best[c];
        if (start == -1) {
            starts[c + 1] = total;
            continue;
        }
        /* BFS inside the component for the shortest way back to start. */
        int64_t stamp = c + 1;
        mark[start] = stamp;
        Py_ssize_t head = 0, tail = 0;
        queue[tail++] = start;
        int64_t closing_v = -1, closing_pos = -1;
        while (head < tail && closing_v == -1) {
            int64_t v = queue[head++];
            int64_t first = off[v];
            for (int64_t pos = first; pos < off[v + 1]; pos++) {
                int64_t w = tg[pos];
                if (comp[w] != c) {
                    continue;
                }
                if (w == start) {
                    closing_v = v;
                    closing_pos = pos - first;
                    break;
                }
                if (mark[w] != stamp) {
                    mark[w] = stamp;
                    parent[w] = v;
                    parent_pos[w] = pos - first;
                    queue[tail++] = w;
                }
            }
        }
        if (closing_v == -1) {
            PyErr_Format(PyExc_ValueError,
                         "component %lld is marked cyclic but no cycle passes through "
                         "node %lld: comp is not a strongly connected decomposition",
                         (long long)c, (long long)start);
            goto done;
        }
        /* The path start -> ... -> closing_v, then the edge back to start;
           walk the parents backwards and fill from the end. */
        int64_t len = 1;
        for (int64_t v = closing_v; v != start; v = parent[v]) {
            len++;
        }
        int64_t k = total + len - 1;
        nodes[k] = closing_v;
        edges[k] = closing_pos;
        for (int64_t v = closing_v; v != start; v = parent[v]) {
            k--;
            nodes[k] = parent[v];
            edges[k] = parent_pos[v];
        }
        total += len;
        starts[c + 1] = total;
    }

    PyObject *a_nodes = make_q_array(st, nodes, total);
    PyObject *a_edges = a_nodes ? make_q_array(st, edges, total) : NULL;
    if (a_edges != NULL) {
        PyObject *a_starts = q_output_finish(&out_starts, 1);
        result = PyTuple_Pack(3, a_starts, a_nodes, a_edges);
        Py_DECREF(a_starts);
    }
    Py_XDECREF(a_nodes);
    Py_XDECREF(a_edges);

done:
    q_output_finish(&out_starts, 0);
    release_i64_arg(&offsets_arg);
    release_i64_arg(&targets_arg);
    release_i64_arg(&comp_arg);
    release_i64_arg(&rank_arg);
    release_bytes_arg(&cyclic_arg);
    scratch_free(best);
    scratch_free(nodes);
    scratch_free(edges);
    scratch_free(mark);
    scratch_free(parent);
    scratch_free(parent_pos);
    scratch_free(queue);
    return result;
}

/* ------------------------------------------------------------------------- */
/* attribute_acyclic                                                         */
/* ------------------------------------------------------------------------- */

PyDoc_STRVAR(attribute_acyclic_doc,
"attribute_acyclic(n, offsets, targets, comp, cyclic_bytes, /)\n--\n\n"
"The cyclic component that keeps each node alive, or -1: owner.\n"
"Same result as graph._attribute_py.");

static PyObject *
core_attribute_acyclic(PyObject *module, PyObject *args)
{
    core_state *st = get_state(module);
    Py_ssize_t n;
    PyObject *o_offsets, *o_targets, *o_comp, *o_cyclic;
    if (!PyArg_ParseTuple(args, "nOOOO:attribute_acyclic", &n, &o_offsets, &o_targets,
                          &o_comp, &o_cyclic)) {
        return NULL;
    }
    i64_arg offsets_arg, targets_arg, comp_arg;
    bytes_arg cyclic_arg;
    memset(&offsets_arg, 0, sizeof(offsets_arg));
    memset(&targets_arg, 0, sizeof(targets_arg));
    memset(&comp_arg, 0, sizeof(comp_arg));
    memset(&cyclic_arg, 0, sizeof(cyclic_arg));
    PyObject *result = NULL;
    int64_t *queue = NULL;
    q_output out_owner;
    memset(&out_owner, 0, sizeof(out_owner));

    if (get_i64_arg(o_offsets, "offsets", &offsets_arg) < 0
        || get_i64_arg(o_targets, "targets", &targets_arg) < 0
        || get_i64_arg(o_comp, "comp", &comp_arg) < 0
        || get_bytes_arg(o_cyclic, "cyclic_bytes", &cyclic_arg) < 0
        || check_csr(n, &offsets_arg, &targets_arg) < 0
        || check_comp(n, &comp_arg, cyclic_arg.len) < 0) {
        goto done;
    }
    const int64_t *off = offsets_arg.data;
    const int64_t *tg = targets_arg.data;
    const int64_t *comp = comp_arg.data;
    const unsigned char *cyclic = cyclic_arg.data;

    queue = alloc_i64(n); /* every node enters at most once */
    if (queue == NULL || q_output_new(st->zero_item, n, 0, &out_owner) < 0) {
        goto done;
    }
    int64_t *owner = out_owner.data;
    for (Py_ssize_t i = 0; i < n; i++) {
        owner[i] = -1;
    }
    /* Multi-source BFS seeded with the cyclic nodes in node order. */
    Py_ssize_t head = 0, tail = 0;
    for (int64_t node = 0; node < n; node++) {
        int64_t c = comp[node];
        if (cyclic[c]) {
            owner[node] = c;
            queue[tail++] = node;
        }
    }
    while (head < tail) {
        int64_t v = queue[head++];
        int64_t o = owner[v];
        for (int64_t pos = off[v]; pos < off[v + 1]; pos++) {
            int64_t w = tg[pos];
            if (owner[w] == -1) {
                owner[w] = o;
                queue[tail++] = w;
            }
        }
    }
    result = q_output_finish(&out_owner, 1);

done:
    q_output_finish(&out_owner, 0);
    release_i64_arg(&offsets_arg);
    release_i64_arg(&targets_arg);
    release_i64_arg(&comp_arg);
    release_bytes_arg(&cyclic_arg);
    scratch_free(queue);
    return result;
}

/* ------------------------------------------------------------------------- */
/* component_totals                                                          */
/* ------------------------------------------------------------------------- */

PyDoc_STRVAR(component_totals_doc,
"component_totals(n, comp, ncomp, owner, sizes, /)\n--\n\n"
"Per component: (size, objects held, bytes held).\n"
"Same result as graph._component_totals_py.");

static PyObject *
core_component_totals(PyObject *module, PyObject *args)
{
    core_state *st = get_state(module);
    Py_ssize_t n, ncomp;
    PyObject *o_comp, *o_owner, *o_sizes;
    if (!PyArg_ParseTuple(args, "nOnOO:component_totals", &n, &o_comp, &ncomp, &o_owner,
                          &o_sizes)) {
        return NULL;
    }
    i64_arg comp_arg, owner_arg, sizes_arg;
    memset(&comp_arg, 0, sizeof(comp_arg));
    memset(&owner_arg, 0, sizeof(owner_arg));
    memset(&sizes_arg, 0, sizeof(sizes_arg));
    PyObject *result = NULL;
    q_output out_size, out_objects, out_bytes;
    memset(&out_size, 0, sizeof(out_size));
    memset(&out_objects, 0, sizeof(out_objects));
    memset(&out_bytes, 0, sizeof(out_bytes));

    if (get_i64_arg(o_comp, "comp", &comp_arg) < 0
        || get_i64_arg(o_owner, "owner", &owner_arg) < 0
        || get_i64_arg(o_sizes, "sizes", &sizes_arg) < 0) {
        goto done;
    }
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        goto done;
    }
    if (check_ncomp(ncomp) < 0
        || check_comp(n, &comp_arg, ncomp) < 0
        || check_owner(n, &owner_arg, ncomp) < 0) {
        goto done;
    }
    if (sizes_arg.len != n) {
        PyErr_Format(PyExc_ValueError, "sizes must have n = %zd items, not %zd", n, sizes_arg.len);
        goto done;
    }
    const int64_t *comp = comp_arg.data;
    const int64_t *owner = owner_arg.data;
    const int64_t *sizes = sizes_arg.data;

    if (q_output_new(st->zero_item, ncomp, 0, &out_size) < 0
        || q_output_new(st->zero_item, ncomp, 0, &out_objects) < 0
        || q_output_new(st->zero_item, ncomp, 0, &out_bytes) < 0) {
        goto done;
    }
    int64_t *comp_size = out_size.data;
    int64_t *held_objects = out_objects.data;
    int64_t *held_bytes = out_bytes.data;
    for (Py_ssize_t node = 0; node < n; node++) {
        comp_size[comp[node]]++;
        int64_t o = owner[node];
        if (o >= 0) {
            held_objects[o]++;
            int64_t add = sizes[node], sum = held_bytes[o];
            /* array('q') refuses the overflowing sum in the reference. */
            if (add > 0 ? sum > INT64_MAX - add : sum < INT64_MIN - add) {
                PyErr_Format(PyExc_OverflowError,
                             "bytes held by component %lld do not fit in a signed 64-bit "
                             "integer", (long long)o);
                goto done;
            }
            held_bytes[o] = sum + add;
        }
    }
    q_output *const outs[] = {&out_size, &out_objects, &out_bytes};
    result = q_outputs_tuple(outs, 3);

done:
    q_output_finish(&out_size, 0);
    q_output_finish(&out_objects, 0);
    q_output_finish(&out_bytes, 0);
    release_i64_arg(&comp_arg);
    release_i64_arg(&owner_arg);
    release_i64_arg(&sizes_arg);
    return result;
}

/* ------------------------------------------------------------------------- */
/* cycle_shapes                                                              */
/* ------------------------------------------------------------------------- */

/* A shape is the sequence of (type id, edge position) pairs along a cycle.  The
   table maps a shape's hash to its number; the shape itself is read back from
   the cycle of its first component, so keys are never copied. */
typedef struct {
    uint64_t hash;
    int64_t shape; /* -1 marks an empty slot */
} shape_slot;

typedef struct {
    shape_slot *slots;
    size_t mask;
    size_t used;
} shape_table;

static int
shape_table_init(shape_table *t, size_t cap)
{
    t->slots = (shape_slot *)scratch_array((Py_ssize_t)cap, sizeof(shape_slot));
    if (t->slots == NULL) {
        return -1;
    }
    for (size_t i = 0; i < cap; i++) {
        t->slots[i].shape = -1;
    }
    t->mask = cap - 1;
    t->used = 0;
    return 0;
}

/* Double the table; the stored hashes place every shape again. */
static int
shape_table_grow(shape_table *t)
{
    size_t cap = t->mask + 1;
    if (cap > SIZE_MAX / 2 / sizeof(shape_slot)) {
        PyErr_NoMemory();
        return -1;
    }
    shape_table bigger;
    if (shape_table_init(&bigger, cap * 2) < 0) {
        return -1;
    }
    for (size_t i = 0; i < cap; i++) {
        const shape_slot *s = &t->slots[i];
        if (s->shape >= 0) {
            size_t j = s->hash & bigger.mask;
            while (bigger.slots[j].shape >= 0) {
                j = (j + 1) & bigger.mask;
            }
            bigger.slots[j] = *s;
        }
    }
    bigger.used = t->used;
    scratch_free(t->slots);
    *t = bigger;
    return 0;
}

static uint64_t
shape_hash(const int64_t *nodes, const int64_t *edges, int64_t len, const int64_t *type_ids)
{
    const uint64_t k = UINT64_C(0x9e3779b97f4a7c15);
    uint64_t h = (uint64_t)len;
    for (int64_t i = 0; i < len; i++) {
        h = (h ^ (uint64_t)type_ids[nodes[i]]) * k;
        h ^= h >> 32;
        h = (h ^ (uint64_t)edges[i]) * k;
        h ^= h >> 32;
    }
    return mix64(h);
}

static int
same_shape(const int64_t *nodes, const int64_t *edges, const int64_t *type_ids,
           int64_t a, int64_t b, int64_t len)
{
    for (int64_t i = 0; i < len; i++) {
        if (edges[a + i] != edges[b + i] || type_ids[nodes[a + i]] != type_ids[nodes[b + i]]) {
            return 0;
        }
    }
    return 1;
}

PyDoc_STRVAR(cycle_shapes_doc,
"cycle_shapes(ncomp, starts, nodes, edges, type_ids, /)\n--\n\n"
"Components grouped by the shape of their cycle: (shape_of, first).\n"
"Same result as graph._cycle_shapes_py.");

static PyObject *
core_cycle_shapes(PyObject *module, PyObject *args)
{
    core_state *st = get_state(module);
    Py_ssize_t ncomp;
    PyObject *o_starts, *o_nodes, *o_edges, *o_type_ids;
    if (!PyArg_ParseTuple(args, "nOOOO:cycle_shapes", &ncomp, &o_starts, &o_nodes, &o_edges,
                          &o_type_ids)) {
        return NULL;
    }
    i64_arg starts_arg, nodes_arg, edges_arg, type_ids_arg;
    memset(&starts_arg, 0, sizeof(starts_arg));
    memset(&nodes_arg, 0, sizeof(nodes_arg));
    memset(&edges_arg, 0, sizeof(edges_arg));
    memset(&type_ids_arg, 0, sizeof(type_ids_arg));
    PyObject *result = NULL;
    int64_t *first = NULL;
    shape_table table = {NULL, 0, 0};
    q_output out_shape_of;
    memset(&out_shape_of, 0, sizeof(out_shape_of));

    if (get_i64_arg(o_starts, "starts", &starts_arg) < 0
        || get_i64_arg(o_nodes, "nodes", &nodes_arg) < 0
        || get_i64_arg(o_edges, "edges", &edges_arg) < 0
        || get_i64_arg(o_type_ids, "type_ids", &type_ids_arg) < 0
        || check_ncomp(ncomp) < 0
        || check_offsets("starts", "ncomp", ncomp, &starts_arg, "len(nodes)", nodes_arg.len) < 0) {
        goto done;
    }
    if (edges_arg.len != nodes_arg.len) {
        PyErr_Format(PyExc_ValueError, "edges must have len(nodes) = %zd items, not %zd",
                     nodes_arg.len, edges_arg.len);
        goto done;
    }
    const int64_t *starts = starts_arg.data;
    const int64_t *nodes = nodes_arg.data;
    const int64_t *edges = edges_arg.data;
    const int64_t *type_ids = type_ids_arg.data;
    for (Py_ssize_t k = 0; k < nodes_arg.len; k++) {
        if (nodes[k] < 0 || nodes[k] >= type_ids_arg.len) {
            PyErr_Format(PyExc_ValueError, "nodes[%zd] = %lld is not a node in [0, %zd)",
                         k, (long long)nodes[k], type_ids_arg.len);
            goto done;
        }
    }

    first = alloc_i64(ncomp); /* at most one shape per component */
    if (first == NULL
        || shape_table_init(&table, 64) < 0
        || q_output_new(st->zero_item, ncomp, 0, &out_shape_of) < 0) {
        goto done;
    }
    int64_t *shape_of = out_shape_of.data;
    int64_t nshapes = 0;
    for (int64_t c = 0; c < ncomp; c++) {
        int64_t s = starts[c], len = starts[c + 1] - s;
        if (len == 0) {
            shape_of[c] = -1;
            continue;
        }
        uint64_t h = shape_hash(nodes + s, edges + s, len, type_ids);
        size_t i = h & table.mask;
        for (;;) {
            shape_slot *slot = &table.slots[i];
            if (slot->shape < 0) {
                slot->hash = h;
                slot->shape = nshapes;
                first[nshapes] = c;
                shape_of[c] = nshapes++;
                table.used++;
                /* Keep the table at most half full. */
                if (table.used * 2 > table.mask + 1 && shape_table_grow(&table) < 0) {
                    goto done;
                }
                break;
            }
            if (slot->hash == h) {
                int64_t f = first[slot->shape];
                int64_t fs = starts[f];
                if (starts[f + 1] - fs == len && same_shape(nodes, edges, type_ids, fs, s, len)) {
                    shape_of[c] = slot->shape;
                    break;
                }
            }
            i = (i + 1) & table.mask;
        }
    }

    PyObject *a_first = make_q_array(st, first, nshapes);
    if (a_first != NULL) {
        PyObject *a_shape_of = q_output_finish(&out_shape_of, 1);
        result = PyTuple_Pack(2, a_shape_of, a_first);
        Py_DECREF(a_shape_of);
        Py_DECREF(a_first);
    }

done:
    q_output_finish(&out_shape_of, 0);
    release_i64_arg(&starts_arg);
    release_i64_arg(&nodes_arg);
    release_i64_arg(&edges_arg);
    release_i64_arg(&type_ids_arg);
    scratch_free(first);
    scratch_free(table.slots);
    return result;
}

/* ------------------------------------------------------------------------- */
/* members_by_owner                                                          */
/* ------------------------------------------------------------------------- */

PyDoc_STRVAR(members_by_owner_doc,
"members_by_owner(n, owner, ncomp, /)\n--\n\n"
"The nodes each component holds, CSR-style: (starts, members).\n"
"Same result as graph._members_py.");

static PyObject *
core_members_by_owner(PyObject *module, PyObject *args)
{
    core_state *st = get_state(module);
    Py_ssize_t n, ncomp;
    PyObject *o_owner;
    if (!PyArg_ParseTuple(args, "nOn:members_by_owner", &n, &o_owner, &ncomp)) {
        return NULL;
    }
    i64_arg owner_arg;
    memset(&owner_arg, 0, sizeof(owner_arg));
    PyObject *result = NULL;
    int64_t *fill = NULL;
    q_output out_starts, out_members;
    memset(&out_starts, 0, sizeof(out_starts));
    memset(&out_members, 0, sizeof(out_members));

    if (get_i64_arg(o_owner, "owner", &owner_arg) < 0) {
        goto done;
    }
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        goto done;
    }
    if (check_ncomp(ncomp) < 0 || check_owner(n, &owner_arg, ncomp) < 0) {
        goto done;
    }
    const int64_t *owner = owner_arg.data;

    /* Counting sort by owner; a stable one, so members stay in node order. */
    if (q_output_new(st->zero_item, ncomp + 1, 0, &out_starts) < 0) {
        goto done;
    }
    int64_t *starts = out_starts.data;
    for (Py_ssize_t node = 0; node < n; node++) {
        int64_t o = owner[node];
        if (o >= 0) {
            starts[o + 1]++;
        }
    }
    for (Py_ssize_t c = 0; c < ncomp; c++) {
        starts[c + 1] += starts[c];
    }
    fill = alloc_i64(ncomp);
    if (fill == NULL
        || q_output_new(st->zero_item, (Py_ssize_t)starts[ncomp], 0, &out_members) < 0) {
        goto done;
    }
    if (ncomp > 0) {
        memcpy(fill, starts, (size_t)ncomp * sizeof(int64_t));
    }
    int64_t *members = out_members.data;
    for (Py_ssize_t node = 0; node < n; node++) {
        int64_t o = owner[node];
        if (o >= 0) {
            members[fill[o]++] = node;
        }
    }
    q_output *const outs[] = {&out_starts, &out_members};
    result = q_outputs_tuple(outs, 2);

done:
    q_output_finish(&out_starts, 0);
    q_output_finish(&out_members, 0);
    release_i64_arg(&owner_arg);
    scratch_free(fill);
    return result;
}

/* ------------------------------------------------------------------------- */
/* node_ranks                                                                */
/* ------------------------------------------------------------------------- */

#define DEGREE_CAP ((int64_t)1 << 16)

PyDoc_STRVAR(node_ranks_doc,
"node_ranks(n, offsets, targets, comp, type_ids, type_major, type_minor, /)\n--\n\n"
"Candidate order for representative_cycles (lower is better).\n"
"Same result as graph._node_ranks_py.");

static PyObject *
core_node_ranks(PyObject *module, PyObject *args)
{
    core_state *st = get_state(module);
    Py_ssize_t n;
    PyObject *o_offsets, *o_targets, *o_comp, *o_type_ids, *o_major, *o_minor;
    if (!PyArg_ParseTuple(args, "nOOOOOO:node_ranks", &n, &o_offsets, &o_targets, &o_comp,
                          &o_type_ids, &o_major, &o_minor)) {
        return NULL;
    }
    i64_arg offsets_arg, targets_arg, comp_arg, type_ids_arg, major_arg, minor_arg;
    memset(&offsets_arg, 0, sizeof(offsets_arg));
    memset(&targets_arg, 0, sizeof(targets_arg));
    memset(&comp_arg, 0, sizeof(comp_arg));
    memset(&type_ids_arg, 0, sizeof(type_ids_arg));
    memset(&major_arg, 0, sizeof(major_arg));
    memset(&minor_arg, 0, sizeof(minor_arg));
    PyObject *result = NULL;
    int64_t *referrers = NULL;
    q_output out_rank;
    memset(&out_rank, 0, sizeof(out_rank));

    if (get_i64_arg(o_offsets, "offsets", &offsets_arg) < 0
        || get_i64_arg(o_targets, "targets", &targets_arg) < 0
        || get_i64_arg(o_comp, "comp", &comp_arg) < 0
        || get_i64_arg(o_type_ids, "type_ids", &type_ids_arg) < 0
        || get_i64_arg(o_major, "type_major", &major_arg) < 0
        || get_i64_arg(o_minor, "type_minor", &minor_arg) < 0
        || check_csr(n, &offsets_arg, &targets_arg) < 0) {
        goto done;
    }
    if (comp_arg.len != n || type_ids_arg.len != n) {
        PyErr_Format(PyExc_ValueError, "comp and type_ids must have n = %zd items", n);
        goto done;
    }
    Py_ssize_t ntypes = major_arg.len;
    if (minor_arg.len != ntypes) {
        PyErr_Format(PyExc_ValueError, "type_minor must have %zd items like type_major, not %zd",
                     ntypes, minor_arg.len);
        goto done;
    }
    const int64_t *type_ids = type_ids_arg.data;
    const int64_t *major = major_arg.data;
    const int64_t *minor = minor_arg.data;
    for (Py_ssize_t v = 0; v < n; v++) {
        if (type_ids[v] < 0 || type_ids[v] >= ntypes) {
            PyErr_Format(PyExc_ValueError, "type_ids[%zd] = %lld is not a type in [0, %zd)",
                         v, (long long)type_ids[v], ntypes);
            goto done;
        }
    }
    for (Py_ssize_t t = 0; t < ntypes; t++) {
        /* Keep (major * cap + cap - 1) * ntypes + minor inside int64. */
        if (major[t] >= ((int64_t)1 << 20) || minor[t] < 0 || minor[t] >= ntypes
            || ntypes >= ((int64_t)1 << 26)) {
            PyErr_Format(PyExc_ValueError, "type order out of range at type %zd", t);
            goto done;
        }
    }
    const int64_t *off = offsets_arg.data;
    const int64_t *tg = targets_arg.data;
    const int64_t *comp = comp_arg.data;

    referrers = alloc_i64_filled(n, 0);
    if (referrers == NULL || q_output_new(st->zero_item, n, 0, &out_rank) < 0) {
        goto done;
    }
    for (Py_ssize_t v = 0; v < n; v++) {
        int64_t c = comp[v];
        for (int64_t pos = off[v]; pos < off[v + 1]; pos++) {
            if (comp[tg[pos]] == c) {
                referrers[tg[pos]]++;
            }
        }
    }
    int64_t *rank = out_rank.data;
    for (Py_ssize_t v = 0; v < n; v++) {
        int64_t t = type_ids[v];
        if (major[t] < 0) {
            rank[v] = -1;
            continue;
        }
        int64_t degree = referrers[v] < DEGREE_CAP - 1 ? referrers[v] : DEGREE_CAP - 1;
        rank[v] = (major[t] * DEGREE_CAP + (DEGREE_CAP - 1 - degree)) * (int64_t)ntypes + minor[t];
    }
    result = q_output_finish(&out_rank, 1);

done:
    q_output_finish(&out_rank, 0);
    release_i64_arg(&offsets_arg);
    release_i64_arg(&targets_arg);
    release_i64_arg(&comp_arg);
    release_i64_arg(&type_ids_arg);
    release_i64_arg(&major_arg);
    release_i64_arg(&minor_arg);
    scratch_free(referrers);
    return result;
}

/* ------------------------------------------------------------------------- */
/* shape_totals                                                              */
/* ------------------------------------------------------------------------- */

PyDoc_STRVAR(shape_totals_doc,
"shape_totals(shape_of, nshapes, held_objects, held_bytes, /)\n--\n\n"
"Per shape: (components, objects held, bytes held).\n"
"Same result as graph._shape_totals_py.");

static PyObject *
core_shape_totals(PyObject *module, PyObject *args)
{
    core_state *st = get_state(module);
    Py_ssize_t nshapes;
    PyObject *o_shape_of, *o_objects, *o_bytes;
    if (!PyArg_ParseTuple(args, "OnOO:shape_totals", &o_shape_of, &nshapes, &o_objects, &o_bytes)) {
        return NULL;
    }
    i64_arg shape_arg, objects_arg, bytes_arg_;
    memset(&shape_arg, 0, sizeof(shape_arg));
    memset(&objects_arg, 0, sizeof(objects_arg));
    memset(&bytes_arg_, 0, sizeof(bytes_arg_));
    PyObject *result = NULL;
    q_output out_count, out_objects, out_bytes;
    memset(&out_count, 0, sizeof(out_count));
    memset(&out_objects, 0, sizeof(out_objects));
    memset(&out_bytes, 0, sizeof(out_bytes));

    if (get_i64_arg(o_shape_of, "shape_of", &shape_arg) < 0
        || get_i64_arg(o_objects, "held_objects", &objects_arg) < 0
        || get_i64_arg(o_bytes, "held_bytes", &bytes_arg_) < 0) {
        goto done;
    }
    Py_ssize_t ncomp = shape_arg.len;
    if (nshapes < 0 || objects_arg.len != ncomp || bytes_arg_.len != ncomp) {
        PyErr_Format(PyExc_ValueError,
                     "held_objects and held_bytes must have %zd items like shape_of, nshapes >= 0",
                     ncomp);
        goto done;
    }
    const int64_t *shape_of = shape_arg.data;
    for (Py_ssize_t c = 0; c < ncomp; c++) {
        if (shape_of[c] < -1 || shape_of[c] >= nshapes) {
            PyErr_Format(PyExc_ValueError, "shape_of[%zd] = %lld is not -1 or a shape in [0, %zd)",
                         c, (long long)shape_of[c], nshapes);
            goto done;
        }
    }
    if (q_output_new(st->zero_item, nshapes, 0, &out_count) < 0
        || q_output_new(st->zero_item, nshapes, 0, &out_objects) < 0
        || q_output_new(st->zero_item, nshapes, 0, &out_bytes) < 0) {
        goto done;
    }
    int64_t *count = out_count.data, *objects = out_objects.data, *nbytes = out_bytes.data;
    for (Py_ssize_t k = 0; k < nshapes; k++) {
        count[k] = objects[k] = nbytes[k] = 0;
    }
    for (Py_ssize_t c = 0; c < ncomp; c++) {
        int64_t k = shape_of[c];
        if (k >= 0) {
            count[k]++;
            if (__builtin_add_overflow(objects[k], objects_arg.data[c], &objects[k])
                || __builtin_add_overflow(nbytes[k], bytes_arg_.data[c], &nbytes[k])) {
                PyErr_SetString(PyExc_OverflowError, "shape totals do not fit in 64 bits");
                goto done;
            }
        }
    }
    q_output *const outs[] = {&out_count, &out_objects, &out_bytes};
    result = q_outputs_tuple(outs, 3);

done:
    q_output_finish(&out_count, 0);
    q_output_finish(&out_objects, 0);
    q_output_finish(&out_bytes, 0);
    release_i64_arg(&shape_arg);
    release_i64_arg(&objects_arg);
    release_i64_arg(&bytes_arg_);
    return result;
}

/* ------------------------------------------------------------------------- */
/* Module                                                                    */
/* ------------------------------------------------------------------------- */

static PyMethodDef core_methods[] = {
    {"build_graph", core_build_graph, METH_O, build_graph_doc},
    {"heap_snapshot", core_heap_snapshot, METH_O, heap_snapshot_doc},
    {"scc", core_scc, METH_VARARGS, scc_doc},
    {"representative_cycles", core_representative_cycles, METH_VARARGS,
     representative_cycles_doc},
    {"attribute_acyclic", core_attribute_acyclic, METH_VARARGS, attribute_acyclic_doc},
    {"component_totals", core_component_totals, METH_VARARGS, component_totals_doc},
    {"cycle_shapes", core_cycle_shapes, METH_VARARGS, cycle_shapes_doc},
    {"members_by_owner", core_members_by_owner, METH_VARARGS, members_by_owner_doc},
    {"node_ranks", core_node_ranks, METH_VARARGS, node_ranks_doc},
    {"shape_totals", core_shape_totals, METH_VARARGS, shape_totals_doc},
    {"release_garbage", core_release_garbage, METH_O, release_garbage_doc},
    {"move_tail", core_move_tail, METH_VARARGS, move_tail_doc},
    {NULL, NULL, 0, NULL},
};

static int
core_exec(PyObject *module)
{
    core_state *st = get_state(module);
    st->zero_item = new_q_zero_item(&st->array_type);
    if (st->zero_item == NULL) {
        return -1;
    }
    st->str_sizeof = PyUnicode_InternFromString("__sizeof__");
    if (st->str_sizeof == NULL) {
        return -1;
    }
    st->str_frombytes = PyUnicode_InternFromString("frombytes");
    if (st->str_frombytes == NULL) {
        return -1;
    }
    st->block_type = PyType_FromModuleAndSpec(module, &i64_block_spec, NULL);
    if (st->block_type == NULL) {
        return -1;
    }
    return 0;
}

static int
core_traverse(PyObject *module, visitproc visit, void *arg)
{
    core_state *st = get_state(module);
    if (st != NULL) {
        Py_VISIT(st->array_type);
        Py_VISIT(st->zero_item);
        Py_VISIT(st->block_type);
    }
    return 0;
}

static int
core_clear(PyObject *module)
{
    core_state *st = get_state(module);
    if (st != NULL) {
        Py_CLEAR(st->array_type);
        Py_CLEAR(st->zero_item);
        Py_CLEAR(st->str_sizeof);
        Py_CLEAR(st->str_frombytes);
        Py_CLEAR(st->block_type);
    }
    return 0;
}

static void
core_free(void *module)
{
    core_clear((PyObject *)module);
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
    {0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "cyclescope._core",
    .m_doc = "C twins of the graph algorithms in cyclescope.graph and of the heap snapshot in "
             "cyclescope.heapgraph, and the release of captured garbage.",
    .m_size = sizeof(core_state),
    .m_methods = core_methods,
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&core_module);
}
