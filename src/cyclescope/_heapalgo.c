/*
 * cyclescope._heapalgo: C twins of the heap-graph algorithms in heapalgo.py.
 *
 * Every function here returns exactly what its pure-Python reference in
 * heapalgo.py returns (_bfs_py, _dominators_py,
 * _retained_sizes_py, _top_indices_py, _positions_py, _group_totals_py,
 * _new_nodes_py, _transpose_py), and raises the same
 * exception for the same bad input.  heapalgo.py's docstrings define the semantics and
 * tests/unit/test_heapalgo.py checks the two against each other.
 *
 * Graphs are CSR arrays over n nodes: the successors of node v are
 * targets[offsets[v]:offsets[v + 1]].  Integer arrays come in through the
 * buffer protocol (int64 items, e.g. array('q')) and go out as array('q')
 * objects; masks are buffers of single bytes, nonzero meaning set.  All input
 * is validated before use, so bad input raises ValueError instead of reading
 * out of bounds.  The algorithms run no Python code and keep the GIL, so the
 * buffers they read cannot change under them once checked.  That is why each
 * function makes its output arrays before it checks the values it will read
 * (or after it has read them): making a Python object can start a garbage
 * collection, and a finalizer could then rewrite a checked buffer.  Working
 * memory is scratch memory (see _carray.h, which also holds the buffer and
 * output-array helpers this module shares with _core.c) and is freed on every
 * path; nothing the caller owns is released.
 *
 * The heaps these run on have millions of nodes, so nothing here recurses:
 * depth-first searches and path compression keep explicit stacks.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_carray.h"

#if PY_VERSION_HEX < 0x030A0000
#error "cyclescope._heapalgo needs CPython 3.10 or later"
#endif

/* ------------------------------------------------------------------------- */
/* Module state                                                              */
/* ------------------------------------------------------------------------- */

typedef struct {
    PyObject *zero_item; /* array('q', [0]), repeated to make output arrays */
} heap_state;

static inline heap_state *
get_state(PyObject *module)
{
    return (heap_state *)PyModule_GetState(module);
}

/* ------------------------------------------------------------------------- */
/* Validation                                                                */
/* ------------------------------------------------------------------------- */

/* A given mask has want items. */
static int
check_mask_len(const bytes_arg *arg, const char *name, const char *len_name, Py_ssize_t want)
{
    if (arg->data != NULL && arg->len != want) {
        PyErr_Format(PyExc_ValueError, "%s must have %s = %zd items, not %zd", name, len_name,
                     want, arg->len);
        return -1;
    }
    return 0;
}

/* Every item of nodes is in [0, n). */
static int
check_nodes(const char *name, const i64_arg *nodes, Py_ssize_t n)
{
    for (Py_ssize_t k = 0; k < nodes->len; k++) {
        if (nodes->data[k] < 0 || nodes->data[k] >= n) {
            PyErr_Format(PyExc_ValueError, "%s[%zd] = %lld is not a node in [0, %zd)", name, k,
                         (long long)nodes->data[k], n);
            return -1;
        }
    }
    return 0;
}

/* A graph with, for the traversals, its sources, blocked mask and (bfs)
   fallback roots.  An absent sources or fallback has len 0. */
typedef struct {
    Py_ssize_t n;
    i64_arg offsets, targets, sources;
    bytes_arg blocked;
    i64_arg fallback;
} graph_args;

/* Take the buffers (o_sources, o_blocked and o_fallback may be NULL, and the
   last two None) and check their kinds and lengths.  Their values are
   checked by graph_args_check, after the caller has made its output
   arrays. */
static int
graph_args_get(graph_args *g, Py_ssize_t n, PyObject *o_offsets, PyObject *o_targets,
               PyObject *o_sources, PyObject *o_blocked, PyObject *o_fallback)
{
    memset(g, 0, sizeof(*g));
    g->n = n;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        return -1;
    }
    if (get_i64_arg(o_offsets, "offsets", &g->offsets) < 0
        || get_i64_arg(o_targets, "targets", &g->targets) < 0
        || (o_sources != NULL && get_i64_arg(o_sources, "sources", &g->sources) < 0)
        || get_optional_bytes_arg(o_blocked, "blocked", &g->blocked) < 0
        || (o_fallback != NULL && o_fallback != Py_None
            && get_i64_arg(o_fallback, "fallback", &g->fallback) < 0)) {
        return -1;
    }
    /* len - 1 != n rather than len != n + 1: n may be PY_SSIZE_T_MAX. */
    if (g->offsets.len - 1 != n) {
        PyErr_Format(PyExc_ValueError, "offsets must have n + 1 = %zd items, not %zd", n + 1,
                     g->offsets.len);
        return -1;
    }
    return check_mask_len(&g->blocked, "blocked", "n", n);
}

/* (offsets, targets) is a CSR graph over n nodes: offsets runs
   non-decreasing from 0 to len(targets), every target, source and fallback
   root is in [0, n). */
static int
graph_args_check(const graph_args *g)
{
    Py_ssize_t n = g->n;
    const int64_t *off = g->offsets.data;
    if (off[0] != 0) {
        PyErr_SetString(PyExc_ValueError, "offsets[0] must be 0");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (off[i + 1] < off[i]) {
            PyErr_Format(PyExc_ValueError, "offsets must be non-decreasing (at %zd)", i + 1);
            return -1;
        }
    }
    if (off[n] != g->targets.len) {
        PyErr_Format(PyExc_ValueError, "offsets[n] must equal len(targets) = %zd, not %lld",
                     g->targets.len, (long long)off[n]);
        return -1;
    }
    if (check_nodes("targets", &g->targets, n) < 0
        || check_nodes("sources", &g->sources, n) < 0) {
        return -1;
    }
    return check_nodes("fallback", &g->fallback, n);
}

static void
graph_args_release(graph_args *g)
{
    release_i64_arg(&g->offsets);
    release_i64_arg(&g->targets);
    release_i64_arg(&g->sources);
    release_bytes_arg(&g->blocked);
    release_i64_arg(&g->fallback);
}

/* ------------------------------------------------------------------------- */
/* bfs                                                                       */
/* ------------------------------------------------------------------------- */

PyDoc_STRVAR(bfs_doc,
"bfs(n, offsets, targets, sources, /, blocked=None, fallback=None)\n--\n\n"
"Multi-source breadth-first search: (parent, dist), the nodes no source reaches\n"
"searched from the fallback nodes. Same result as heapalgo._bfs_py.");

/* How many queue entries ahead to prefetch a node's offsets, and half that
   for its successor list (whose start is known by then). */
#define BFS_AHEAD 16

/* Queue the nodes of roots not seen yet, in order, at distance 0. */
static Py_ssize_t
bfs_seed(const i64_arg *roots, unsigned char *seen, int64_t *dist, int64_t *queue,
         Py_ssize_t tail)
{
    for (Py_ssize_t k = 0; k < roots->len; k++) {
        int64_t s = roots->data[k];
        if (!seen[s]) {
            seen[s] = 1;
            dist[s] = 0;
            queue[tail++] = s;
        }
    }
    return tail;
}

/* Expand queue[head:tail], the roots just seeded, and everything queued
   after them until the queue runs dry; the new tail comes back. */
static Py_ssize_t
bfs_expand(const int64_t *off, const int64_t *tg, unsigned char *seen, int64_t *parent,
           int64_t *dist, int64_t *queue, Py_ssize_t head, Py_ssize_t tail)
{
    /* Level by level: the nodes queued before level_end are expanded at
       distance d - 1, so d need not be read back from dist. */
    int64_t d = 1;
    Py_ssize_t level_end = tail;
    while (head < tail) {
        if (head == level_end) {
            d++;
            level_end = tail;
        }
        if (head + BFS_AHEAD < tail) {
            __builtin_prefetch(&off[queue[head + BFS_AHEAD]]);
        }
        if (head + BFS_AHEAD / 2 < tail) {
            __builtin_prefetch(&tg[off[queue[head + BFS_AHEAD / 2]]]);
        }
        int64_t v = queue[head++];
        for (int64_t pos = off[v], end = off[v + 1]; pos < end; pos++) {
            int64_t w = tg[pos];
            if (!seen[w]) {
                seen[w] = 1;
                dist[w] = d;
                parent[w] = v;
                queue[tail++] = w;
            }
        }
    }
    return tail;
}

static PyObject *
heap_bfs(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"", "", "", "", "blocked", "fallback", NULL};
    heap_state *st = get_state(module);
    Py_ssize_t n;
    PyObject *o_offsets, *o_targets, *o_sources, *o_blocked = Py_None, *o_fallback = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "nOOO|OO:bfs", kwlist, &n, &o_offsets,
                                     &o_targets, &o_sources, &o_blocked, &o_fallback)) {
        return NULL;
    }
    graph_args g;
    q_output out_parent, out_dist;
    memset(&out_parent, 0, sizeof(out_parent));
    memset(&out_dist, 0, sizeof(out_dist));
    int64_t *queue = NULL;
    unsigned char *seen = NULL;
    PyObject *result = NULL;

    if (graph_args_get(&g, n, o_offsets, o_targets, o_sources, o_blocked, o_fallback) < 0
        || q_output_new(st->zero_item, n, -1, &out_parent) < 0
        || q_output_new(st->zero_item, n, -1, &out_dist) < 0
        || graph_args_check(&g) < 0
        || (queue = alloc_i64(n)) == NULL
        || (seen = alloc_mask_copy(g.blocked.data, n)) == NULL) {
        goto done;
    }
    const int64_t *off = g.offsets.data, *tg = g.targets.data;
    int64_t *parent = out_parent.data, *dist = out_dist.data;

    /* seen (1 byte a node, so it stays in cache) starts as the blocked mask:
       a blocked node looks already reached and is never entered.  The
       fallback phase goes on in the same queue once the sources' has run
       dry, so what they reached stays seen and is never entered again; every
       node is queued at most once over both, so n entries are enough. */
    Py_ssize_t tail = bfs_seed(&g.sources, seen, dist, queue, 0);
    tail = bfs_expand(off, tg, seen, parent, dist, queue, 0, tail);
    Py_ssize_t head = tail;
    tail = bfs_seed(&g.fallback, seen, dist, queue, tail);
    bfs_expand(off, tg, seen, parent, dist, queue, head, tail);

    q_output *const outs[] = {&out_parent, &out_dist};
    result = q_outputs_tuple(outs, 2);

done:
    q_output_finish(&out_parent, 0);
    q_output_finish(&out_dist, 0);
    graph_args_release(&g);
    scratch_free(queue);
    scratch_free(seen);
    return result;
}

/* ------------------------------------------------------------------------- */
/* transpose                                                                 */
/* ------------------------------------------------------------------------- */

PyDoc_STRVAR(transpose_doc,
"transpose(n, offsets, targets, /)\n--\n\n"
"The reverse graph: (roffsets, rtargets), the referrers of each node ascending,\n"
"each once. Same result as heapalgo._transpose_py.");

static PyObject *
heap_transpose(PyObject *module, PyObject *args)
{
    heap_state *st = get_state(module);
    Py_ssize_t n;
    PyObject *o_offsets, *o_targets;
    if (!PyArg_ParseTuple(args, "nOO:transpose", &n, &o_offsets, &o_targets)) {
        return NULL;
    }
    graph_args g;
    int64_t *last = NULL, *fill = NULL;
    q_output out_offsets, out_targets;
    memset(&out_offsets, 0, sizeof(out_offsets));
    memset(&out_targets, 0, sizeof(out_targets));
    PyObject *result = NULL;

    if (graph_args_get(&g, n, o_offsets, o_targets, NULL, NULL, NULL) < 0
        || q_output_new(st->zero_item, n + 1, 0, &out_offsets) < 0
        || graph_args_check(&g) < 0) {
        goto done;
    }
    const int64_t *off = g.offsets.data, *tg = g.targets.data;
    int64_t *roff = out_offsets.data;
    /* last[v]: the last source counted for v, so that u -> v counts once. */
    if ((last = alloc_i64_filled(n, -1)) == NULL) {
        goto done;
    }
    for (Py_ssize_t u = 0; u < n; u++) {
        for (int64_t pos = off[u]; pos < off[u + 1]; pos++) {
            int64_t v = tg[pos];
            if (last[v] != u) {
                last[v] = u;
                roff[v + 1]++;
            }
        }
    }
    for (Py_ssize_t v = 0; v < n; v++) {
        roff[v + 1] += roff[v];
    }
    /* Made once the input is read: the checked buffers are not read again. */
    if (q_output_new(st->zero_item, roff[n], 0, &out_targets) < 0
        || (fill = alloc_i64(n)) == NULL) {
        goto done;
    }
    memcpy(fill, roff, (size_t)n * sizeof(int64_t));
    for (Py_ssize_t v = 0; v < n; v++) {
        last[v] = -1;
    }
    int64_t *rtg = out_targets.data;
    for (Py_ssize_t u = 0; u < n; u++) {
        for (int64_t pos = off[u]; pos < off[u + 1]; pos++) {
            int64_t v = tg[pos];
            /* Making the output could run a finalizer that rewrote the input. */
            if (v < 0 || v >= n || pos >= g.targets.len || (last[v] != u && fill[v] >= roff[v + 1])) {
                PyErr_SetString(PyExc_RuntimeError, "the graph changed while it was read");
                goto done;
            }
            if (last[v] != u) {
                last[v] = u;
                rtg[fill[v]++] = u;
            }
        }
    }
    q_output *const outs[] = {&out_offsets, &out_targets};
    result = q_outputs_tuple(outs, 2);

done:
    graph_args_release(&g);
    q_output_finish(&out_offsets, 0);
    q_output_finish(&out_targets, 0);
    scratch_free(last);
    scratch_free(fill);
    return result;
}

/* ------------------------------------------------------------------------- */
/* dominators                                                                */
/* ------------------------------------------------------------------------- */

PyDoc_STRVAR(dominators_doc,
"dominators(n, offsets, targets, sources, /, blocked=None)\n--\n\n"
"Dominator tree under a virtual root whose successors are sources: (idom, order).\n"
"Same result as heapalgo._dominators_py.");

/*
 * Semi-NCA (Georgiadis' variant of Lengauer-Tarjan).  Vertices are numbered
 * in DFS preorder, 0 being the virtual root and 1..N the reachable nodes.
 *
 *   1. DFS from the root: vert[i] = node, anc = idom = DFS parent (numbers).
 *   2. Predecessor lists, by node id, of the reachable nodes, holding
 *      numbers; the root (0) is a predecessor of each source.
 *   3. Semidominators for i = N..1: semi[i] = the least of p (predecessors
 *      p <= i) and of the semis on the tree path from p up to, not including,
 *      the first vertex numbered <= i (predecessors p > i).  The vertices
 *      > i are exactly those already linked into the forest, so anc doubles
 *      as the forest, compressed as eval goes, and needs no link step.  Only
 *      the least semi on a path is ever used, never the vertex holding it,
 *      so the forest keeps that value (lsemi) instead of the usual label.
 *   4. idom[i] = the nearest common dominator-tree ancestor of semi[i] and
 *      the DFS parent: walk idom up from the parent until reaching a number
 *      <= semi[i].  Going in preorder, everything above i is final.
 *
 * Vertex numbers are int32 (one 16-byte record per vertex): memory traffic,
 * not arithmetic, is what these passes cost.
 */
typedef int32_t vid_t;
#define DOM_MAX_NODES (INT32_MAX - 1)

typedef struct {
    vid_t anc;
    vid_t lsemi; /* least semi from here up to the forest root, excluded */
    vid_t semi;
    vid_t idom;
} dom_info;

/* The least semi on the forest path from v (linked: v >= last) up to its
   root, compressing the path on the way.  stack has room for every vertex. */
static inline vid_t
dom_eval(vid_t v, vid_t last, dom_info *info, vid_t *stack)
{
    if (info[v].anc < last) {
        return info[v].lsemi;
    }
    Py_ssize_t sp = 0;
    vid_t x = v;
    do {
        stack[sp++] = x;
        x = info[x].anc;
    } while (info[x].anc >= last);
    /* x is the topmost linked vertex: its lsemi covers the path above it,
       and everything below gets linked straight to the root. */
    vid_t root = info[x].anc;
    vid_t best = info[x].lsemi;
    while (sp > 0) {
        dom_info *y = &info[stack[--sp]];
        y->anc = root;
        if (best < y->lsemi) {
            y->lsemi = best;
        }
        else {
            best = y->lsemi;
        }
    }
    return best;
}

/* Prefetch distances: successors of the DFS node being left, vertices of
   the semidominator pass. */
#define DFS_AHEAD 8
#define DOM_AHEAD 6

static PyObject *
heap_dominators(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"", "", "", "", "blocked", NULL};
    heap_state *st = get_state(module);
    Py_ssize_t n;
    PyObject *o_offsets, *o_targets, *o_sources, *o_blocked = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "nOOO|O:dominators", kwlist, &n, &o_offsets,
                                     &o_targets, &o_sources, &o_blocked)) {
        return NULL;
    }
    graph_args g;
    q_output out_idom, out_order;
    memset(&out_idom, 0, sizeof(out_idom));
    memset(&out_order, 0, sizeof(out_order));
    unsigned char *seen = NULL;
    vid_t *number = NULL, *vert = NULL, *stack_v = NULL, *preds = NULL;
    int64_t *stack_pos = NULL, *stack_end = NULL, *pred_off = NULL;
    dom_info *info = NULL;
    PyObject *result = NULL;

    if (graph_args_get(&g, n, o_offsets, o_targets, o_sources, o_blocked, NULL) < 0) {
        goto done;
    }
    if (n > DOM_MAX_NODES) {
        PyErr_Format(PyExc_ValueError, "n = %zd is more than the %d nodes dominators handles",
                     n, DOM_MAX_NODES);
        goto done;
    }
    if (q_output_new(st->zero_item, n, -2, &out_idom) < 0
        || graph_args_check(&g) < 0
        || (seen = alloc_mask_copy(g.blocked.data, n)) == NULL
        || (number = SCRATCH_N(vid_t, n)) == NULL
        || (vert = SCRATCH_N(vid_t, n + 1)) == NULL
        || (info = SCRATCH_N(dom_info, n + 1)) == NULL
        || (stack_v = SCRATCH_N(vid_t, n)) == NULL
        || (stack_pos = SCRATCH_N(int64_t, n)) == NULL
        || (stack_end = SCRATCH_N(int64_t, n)) == NULL) {
        goto done;
    }
    const int64_t *off = g.offsets.data, *tg = g.targets.data;
    const int64_t *sources = g.sources.data;
    const unsigned char *blocked = g.blocked.data;
    Py_ssize_t nsources = g.sources.len;

    /* 1. Iterative DFS; seen starts as the blocked mask, so blocked nodes
       are never entered.  A stack frame keeps its node's edge range, so
       coming back to a node rereads no offsets. */
    vid_t count = 0;
    vert[0] = -1;
    info[0].anc = info[0].idom = 0;
    for (Py_ssize_t k = 0; k < nsources; k++) {
        int64_t s = sources[k];
        if (seen[s]) {
            continue;
        }
        seen[s] = 1;
        number[s] = ++count;
        vert[count] = (vid_t)s;
        info[count].anc = info[count].idom = 0;
        stack_v[0] = count;
        stack_pos[0] = off[s];
        stack_end[0] = off[s + 1];
        Py_ssize_t sp = 1;
        while (sp > 0) {
            Py_ssize_t top = sp - 1;
            int64_t pos = stack_pos[top], end = stack_end[top];
            int pushed = 0;
            while (pos < end) {
                int64_t w = tg[pos++];
                if (!seen[w]) {
                    stack_pos[top] = pos;
                    seen[w] = 1;
                    number[w] = ++count;
                    vert[count] = (vid_t)w;
                    info[count].anc = info[count].idom = stack_v[top];
                    stack_v[sp] = count;
                    stack_pos[sp] = off[w];
                    stack_end[sp] = off[w + 1];
                    sp++;
                    pushed = 1;
                    break;
                }
            }
            if (!pushed) {
                sp--;
            }
            else {
                /* The node just entered is explored first; the successors
                   after it come next when the search gets back here, so
                   start fetching their offsets now. */
                int64_t ahead = stack_end[top] - pos;
                if (ahead > DFS_AHEAD) {
                    ahead = DFS_AHEAD;
                }
                for (int64_t q = pos; q < pos + ahead; q++) {
                    __builtin_prefetch(&off[tg[q]]);
                }
            }
        }
    }
    scratch_free(stack_v);
    stack_v = NULL;
    scratch_free(stack_pos);
    stack_pos = NULL;
    scratch_free(stack_end);
    stack_end = NULL;

    /* 2. Predecessor lists in CSR form by node id, nodes scanned in id order
       so offsets and targets are read sequentially.  Count w's predecessors
       into pred_off[w + 2] and prefix-sum, so pred_off[w + 1] is where w's
       list starts; filling with pred_off[w + 1] as the cursor leaves it where
       the list ends, so w's list is then pred_off[w] .. pred_off[w + 1].
       Every non-blocked successor of a reachable node is reachable. */
    if ((pred_off = alloc_i64_filled(n + 2, 0)) == NULL) {
        goto done;
    }
    for (Py_ssize_t v = 0; v < n; v++) {
        if (!seen[v] || (blocked != NULL && blocked[v])) {
            continue;
        }
        for (int64_t pos = off[v], end = off[v + 1]; pos < end; pos++) {
            int64_t w = tg[pos];
            if (blocked == NULL || !blocked[w]) {
                pred_off[w + 2]++;
            }
        }
    }
    for (Py_ssize_t k = 0; k < nsources; k++) {
        int64_t s = sources[k];
        if (blocked == NULL || !blocked[s]) {
            pred_off[s + 2]++;
        }
    }
    for (Py_ssize_t w = 1; w <= n + 1; w++) {
        pred_off[w] += pred_off[w - 1];
    }
    if ((preds = SCRATCH_N(vid_t, pred_off[n + 1])) == NULL) {
        goto done;
    }
    for (Py_ssize_t v = 0; v < n; v++) {
        if (!seen[v] || (blocked != NULL && blocked[v])) {
            continue;
        }
        vid_t i = number[v];
        for (int64_t pos = off[v], end = off[v + 1]; pos < end; pos++) {
            int64_t w = tg[pos];
            if (blocked == NULL || !blocked[w]) {
                preds[pred_off[w + 1]++] = i;
            }
        }
    }
    for (Py_ssize_t k = 0; k < nsources; k++) {
        int64_t s = sources[k];
        if (blocked == NULL || !blocked[s]) {
            preds[pred_off[s + 1]++] = 0;
        }
    }
    scratch_free(seen);
    seen = NULL;

    /* 3. Semidominators.  number is no longer needed and becomes eval's
       stack.  The loop is a chain of cache misses, so the predecessor lists
       and the records they point at are prefetched a few vertices ahead. */
    vid_t *eval_stack = number;
    for (vid_t i = 0; i <= count; i++) {
        info[i].semi = info[i].lsemi = i;
    }
    for (vid_t i = count; i >= 1; i--) {
        if (i > 3 * DOM_AHEAD) {
            __builtin_prefetch(&pred_off[vert[i - 3 * DOM_AHEAD]]);
            __builtin_prefetch(&preds[pred_off[vert[i - 2 * DOM_AHEAD]]]);
            int64_t a = vert[i - DOM_AHEAD];
            int64_t end = pred_off[a + 1];
            if (end - pred_off[a] > 4 * DOM_AHEAD) {
                end = pred_off[a] + 4 * DOM_AHEAD;
            }
            for (int64_t k = pred_off[a]; k < end; k++) {
                __builtin_prefetch(&info[preds[k]]);
            }
        }
        int64_t v = vert[i];
        vid_t s = info[i].idom;
        for (int64_t k = pred_off[v], end = pred_off[v + 1]; k < end; k++) {
            vid_t p = preds[k];
            /* A p <= i is not linked yet: its path is p alone, semi p. */
            vid_t c = p <= i ? p : dom_eval(p, i + 1, info, eval_stack);
            if (c < s) {
                s = c;
            }
        }
        info[i].semi = info[i].lsemi = s;
    }

    scratch_free(number);
    number = NULL;
    scratch_free(pred_off);
    pred_off = NULL;
    scratch_free(preds);
    preds = NULL;

    /* 4. Immediate dominators. */
    for (vid_t i = 1; i <= count; i++) {
        vid_t s = info[i].semi;
        vid_t c = info[i].idom;
        while (c > s) {
            c = info[c].idom;
        }
        info[i].idom = c;
    }

    int64_t *out = out_idom.data;
    if (q_output_new(st->zero_item, count, 0, &out_order) < 0) {
        goto done;
    }
    for (vid_t i = 1; i <= count; i++) {
        vid_t d = info[i].idom;
        out[vert[i]] = d == 0 ? -1 : vert[d];
        out_order.data[i - 1] = vert[i];
    }
    q_output *const outs[] = {&out_idom, &out_order};
    result = q_outputs_tuple(outs, 2);

done:
    q_output_finish(&out_idom, 0);
    q_output_finish(&out_order, 0);
    graph_args_release(&g);
    scratch_free(seen);
    scratch_free(number);
    scratch_free(vert);
    scratch_free(info);
    scratch_free(stack_v);
    scratch_free(stack_pos);
    scratch_free(stack_end);
    scratch_free(pred_off);
    scratch_free(preds);
    return result;
}

/* ------------------------------------------------------------------------- */
/* retained_sizes                                                            */
/* ------------------------------------------------------------------------- */

PyDoc_STRVAR(retained_sizes_doc,
"retained_sizes(idom, order, sizes, /)\n--\n\n"
"Sum of sizes over each node's dominator subtree. Same result as\n"
"heapalgo._retained_sizes_py.");

static PyObject *
heap_retained_sizes(PyObject *module, PyObject *args)
{
    heap_state *st = get_state(module);
    PyObject *o_idom, *o_order, *o_sizes;
    if (!PyArg_ParseTuple(args, "OOO:retained_sizes", &o_idom, &o_order, &o_sizes)) {
        return NULL;
    }
    i64_arg idom_in, order_in, sizes_in;
    memset(&idom_in, 0, sizeof(idom_in));
    memset(&order_in, 0, sizeof(order_in));
    memset(&sizes_in, 0, sizeof(sizes_in));
    q_output out_ret;
    memset(&out_ret, 0, sizeof(out_ret));
    int64_t *pos = NULL;
    PyObject *result = NULL;

    if (get_i64_arg(o_idom, "idom", &idom_in) < 0
        || get_i64_arg(o_order, "order", &order_in) < 0
        || get_i64_arg(o_sizes, "sizes", &sizes_in) < 0) {
        goto done;
    }
    Py_ssize_t n = idom_in.len;
    const int64_t *idom = idom_in.data, *order = order_in.data, *sizes = sizes_in.data;
    Py_ssize_t norder = order_in.len;
    if (sizes_in.len != n) {
        PyErr_Format(PyExc_ValueError, "sizes must have len(idom) = %zd items, not %zd", n,
                     sizes_in.len);
        goto done;
    }
    if (q_output_new(st->zero_item, n, 0, &out_ret) < 0
        || (pos = alloc_i64_filled(n, -1)) == NULL) {
        goto done;
    }
    for (Py_ssize_t k = 0; k < norder; k++) {
        int64_t v = order[k];
        if (v < 0 || v >= n) {
            PyErr_Format(PyExc_ValueError, "order[%zd] = %lld is not a node in [0, %zd)", k,
                         (long long)v, n);
            goto done;
        }
        if (pos[v] != -1) {
            PyErr_Format(PyExc_ValueError, "order[%zd] = %lld repeats order[%lld]", k,
                         (long long)v, (long long)pos[v]);
            goto done;
        }
        pos[v] = k;
    }
    for (Py_ssize_t v = 0; v < n; v++) {
        int64_t d = idom[v];
        if (sizes[v] < 0) {
            PyErr_Format(PyExc_ValueError, "sizes[%zd] = %lld is negative", v,
                         (long long)sizes[v]);
            goto done;
        }
        if (d < -2 || d >= n) {
            PyErr_Format(PyExc_ValueError,
                         "idom[%zd] = %lld is neither -2, -1 nor a node in [0, %zd)", v,
                         (long long)d, n);
            goto done;
        }
        if (pos[v] == -1) {
            if (d != -2) {
                PyErr_Format(PyExc_ValueError, "idom[%zd] = %lld but node %zd is not in order", v,
                             (long long)d, v);
                goto done;
            }
        }
        else if (d == -2) {
            PyErr_Format(PyExc_ValueError, "idom[%zd] = -2 but node %zd is in order", v, v);
            goto done;
        }
        else if (d >= 0 && (pos[d] == -1 || pos[d] >= pos[v])) {
            PyErr_Format(PyExc_ValueError,
                         "idom[%zd] = %lld does not come before node %zd in order", v,
                         (long long)d, v);
            goto done;
        }
    }
    int64_t *ret = out_ret.data;
    for (Py_ssize_t k = 0; k < norder; k++) {
        ret[order[k]] = sizes[order[k]];
    }
    for (Py_ssize_t k = norder - 1; k >= 0; k--) {
        int64_t v = order[k];
        int64_t d = idom[v];
        if (d >= 0 && __builtin_add_overflow(ret[d], ret[v], &ret[d])) {
            PyErr_SetString(PyExc_OverflowError, "retained sizes do not fit in 64 bits");
            goto done;
        }
    }
    result = q_output_finish(&out_ret, 1);

done:
    q_output_finish(&out_ret, 0);
    release_i64_arg(&idom_in);
    release_i64_arg(&order_in);
    release_i64_arg(&sizes_in);
    scratch_free(pos);
    return result;
}

/* ------------------------------------------------------------------------- */
/* top_indices                                                               */
/* ------------------------------------------------------------------------- */

PyDoc_STRVAR(top_indices_doc,
"top_indices(values, k, /, eligible=None)\n--\n\n"
"Indices of the k largest values, largest first, ties by lower index.\n"
"Same result as heapalgo._top_indices_py.");

/* a ranks before b: larger value, or equal value and lower index. */
static inline int
ranks_before(const int64_t *values, int64_t a, int64_t b)
{
    return values[a] > values[b] || (values[a] == values[b] && a < b);
}

/* Restore the heap below slot i; heap[0] is the item ranking last. */
static void
sift_down(int64_t *heap, Py_ssize_t size, Py_ssize_t i, const int64_t *values)
{
    int64_t item = heap[i];
    for (;;) {
        Py_ssize_t child = 2 * i + 1;
        if (child >= size) {
            break;
        }
        if (child + 1 < size && ranks_before(values, heap[child], heap[child + 1])) {
            child++;
        }
        if (!ranks_before(values, item, heap[child])) {
            break;
        }
        heap[i] = heap[child];
        i = child;
    }
    heap[i] = item;
}

static PyObject *
heap_top_indices(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"", "", "eligible", NULL};
    heap_state *st = get_state(module);
    PyObject *o_values, *o_k, *o_eligible = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:top_indices", kwlist, &o_values, &o_k,
                                     &o_eligible)) {
        return NULL;
    }
    /* Any int: a k beyond Py_ssize_t just means all of them. */
    PyObject *k_index = PyNumber_Index(o_k);
    if (k_index == NULL) {
        return NULL;
    }
    Py_ssize_t k = PyNumber_AsSsize_t(k_index, NULL);
    Py_DECREF(k_index);
    i64_arg values_in;
    memset(&values_in, 0, sizeof(values_in));
    bytes_arg eligible;
    memset(&eligible, 0, sizeof(eligible));
    q_output out_top;
    memset(&out_top, 0, sizeof(out_top));
    int64_t *heap = NULL;
    PyObject *result = NULL;

    if (k < 0) {
        PyErr_SetString(PyExc_ValueError, "k must be >= 0");
        goto done;
    }
    if (get_i64_arg(o_values, "values", &values_in) < 0
        || get_optional_bytes_arg(o_eligible, "eligible", &eligible) < 0
        || check_mask_len(&eligible, "eligible", "len(values)", values_in.len) < 0) {
        goto done;
    }
    const int64_t *values = values_in.data;
    const unsigned char *mask = eligible.data;
    Py_ssize_t len = values_in.len;
    if (k > len) {
        k = len;
    }
    /* A heap of the best k so far, the one ranking last on top; then sorted
       in place by moving the last-ranked to the back, one at a time. */
    if ((heap = alloc_i64(k)) == NULL) {
        goto done;
    }
    Py_ssize_t size = 0;
    if (k > 0) {
        for (Py_ssize_t i = 0; i < len; i++) {
            if (mask != NULL && !mask[i]) {
                continue;
            }
            if (size < k) {
                /* sift up */
                Py_ssize_t j = size++;
                while (j > 0) {
                    Py_ssize_t up = (j - 1) / 2;
                    if (!ranks_before(values, heap[up], i)) {
                        break;
                    }
                    heap[j] = heap[up];
                    j = up;
                }
                heap[j] = i;
            }
            else if (ranks_before(values, i, heap[0])) {
                heap[0] = i;
                sift_down(heap, size, 0, values);
            }
        }
    }
    Py_ssize_t found = size;
    while (size > 1) {
        int64_t last = heap[0];
        heap[0] = heap[--size];
        sift_down(heap, size, 0, values);
        heap[size] = last;
    }
    if (q_output_new(st->zero_item, found, 0, &out_top) < 0) {
        goto done;
    }
    if (found > 0) {
        memcpy(out_top.data, heap, (size_t)found * sizeof(int64_t));
    }
    result = q_output_finish(&out_top, 1);

done:
    q_output_finish(&out_top, 0);
    release_i64_arg(&values_in);
    release_bytes_arg(&eligible);
    scratch_free(heap);
    return result;
}

/* ------------------------------------------------------------------------- */
/* positions                                                                 */
/* ------------------------------------------------------------------------- */

PyDoc_STRVAR(positions_doc,
"positions(addresses, queries, /)\n--\n\n"
"For each query, the index of its first occurrence in addresses, or -1.\n"
"Same result as heapalgo._positions_py.");

/* One slot of the open-addressing table of the distinct queries. */
typedef struct {
    int64_t key;
    int64_t first; /* POS_EMPTY, POS_MISSING (not seen yet) or an index */
} pos_slot;

#define POS_EMPTY (-2)
#define POS_MISSING (-1)

/* Fibonacci hashing: the multiply spreads addresses, which differ mostly in
   their middle bits, over the top bits, which are the ones used. */
static inline uint64_t
pos_hash(int64_t key)
{
    return (uint64_t)key * UINT64_C(0x9E3779B97F4A7C15);
}

/* The word of the filter holding the bit for hash h, and the bit. */
#define POS_FILTER_WORD(filter, h, fshift) ((filter)[((h) >> (fshift)) >> 6])
#define POS_FILTER_BIT(h, fshift) (UINT64_C(1) << (((h) >> (fshift)) & 63))

/* How many keys ahead each pass prefetches its table slot (and filter word):
   for a diff of two snapshots both sides are the whole heap, and every lookup
   is a cache miss into a table far larger than the caches. */
#define POS_AHEAD 16

static inline void
pos_prefetch(const pos_slot *table, int shift, const uint64_t *filter, int fshift, int64_t key)
{
    uint64_t h = pos_hash(key);
    __builtin_prefetch(&table[h >> shift]);
    if (filter != NULL) {
        __builtin_prefetch(&POS_FILTER_WORD(filter, h, fshift));
    }
}

/* The slot holding key (hash h), or the empty slot where it belongs. */
static inline pos_slot *
pos_find(pos_slot *table, size_t mask, int shift, uint64_t h, int64_t key)
{
    size_t i = (size_t)(h >> shift);
    while (table[i].first != POS_EMPTY && table[i].key != key) {
        i = (i + 1) & mask;
    }
    return &table[i];
}

/* positions over addresses[0:naddresses], the queries a buffer argument. */
static PyObject *
positions_of(heap_state *st, const int64_t *addresses, Py_ssize_t naddresses, PyObject *o_queries)
{
    i64_arg queries_in;
    memset(&queries_in, 0, sizeof(queries_in));
    q_output out_pos;
    memset(&out_pos, 0, sizeof(out_pos));
    pos_slot *table = NULL;
    uint64_t *filter = NULL;
    PyObject *result = NULL;

    if (get_i64_arg(o_queries, "queries", &queries_in) < 0) {
        goto done;
    }
    const int64_t *queries = queries_in.data;
    Py_ssize_t nqueries = queries_in.len;
    /* A power of two at least twice the queries (at most half full), 16 at
       least; nqueries is at most PY_SSIZE_T_MAX / 8 (8-byte items), so this
       cannot overflow. */
    int bits = 4;
    while (((Py_ssize_t)1 << bits) < 2 * nqueries) {
        bits++;
    }
    size_t size = (size_t)1 << bits, mask = size - 1;
    int shift = 64 - bits;
    /* In front of the table, a filter of 32 bits a slot (at least 64 a
       distinct query), each set where a query's hash lands: at most 1 in 64
       of the addresses that are no query get past it, so the table (and
       its unpredictable branches) is hardly reached but by hits.  (The cap
       only keeps the shifts defined: a table that big fails to allocate.) */
    int fbits = bits + 5 < 58 ? bits + 5 : 58;
    int fshift = 64 - fbits;
    /* Where most addresses are queries (the two sides of a diff) the filter
       would stop nothing: it is left out, and its memory never touched. */
    int use_filter = nqueries <= naddresses / 8;
    if (q_output_new(st->zero_item, nqueries, 0, &out_pos) < 0
        || (table = SCRATCH_N(pos_slot, (Py_ssize_t)size)) == NULL
        || (use_filter
            && (filter = (uint64_t *)scratch_array((Py_ssize_t)1 << (fbits - 6), sizeof(uint64_t)))
                   == NULL)) {
        goto done;
    }
    for (size_t i = 0; i < size; i++) {
        table[i].first = POS_EMPTY;
    }
    if (use_filter) {
        memset(filter, 0, ((size_t)1 << (fbits - 6)) * sizeof(uint64_t));
    }
    Py_ssize_t missing = 0; /* distinct queries not found yet */
    for (Py_ssize_t k = 0; k < nqueries; k++) {
        if (k + POS_AHEAD < nqueries) {
            pos_prefetch(table, shift, filter, fshift, queries[k + POS_AHEAD]);
        }
        uint64_t h = pos_hash(queries[k]);
        pos_slot *slot = pos_find(table, mask, shift, h, queries[k]);
        if (slot->first == POS_EMPTY) {
            slot->key = queries[k];
            slot->first = POS_MISSING;
            missing++;
            if (use_filter) {
                POS_FILTER_WORD(filter, h, fshift) |= POS_FILTER_BIT(h, fshift);
            }
        }
    }
    /* The one pass: sequential reads of addresses, a filter and a table that
       stay in cache for the few queries this is meant for (5,000 take 64 KiB
       of filter, 256 KiB of table); it stops once every query is found. */
    for (Py_ssize_t i = 0; i < naddresses && missing > 0; i++) {
        if (i + POS_AHEAD < naddresses) {
            pos_prefetch(table, shift, filter, fshift, addresses[i + POS_AHEAD]);
        }
        uint64_t h = pos_hash(addresses[i]);
        if (use_filter && !(POS_FILTER_WORD(filter, h, fshift) & POS_FILTER_BIT(h, fshift))) {
            continue;
        }
        pos_slot *slot = pos_find(table, mask, shift, h, addresses[i]);
        if (slot->first == POS_MISSING) {
            slot->first = i;
            missing--;
        }
    }
    for (Py_ssize_t k = 0; k < nqueries; k++) {
        if (k + POS_AHEAD < nqueries) {
            pos_prefetch(table, shift, NULL, 0, queries[k + POS_AHEAD]);
        }
        out_pos.data[k] = pos_find(table, mask, shift, pos_hash(queries[k]), queries[k])->first;
    }
    result = q_output_finish(&out_pos, 1);

done:
    q_output_finish(&out_pos, 0);
    release_i64_arg(&queries_in);
    scratch_free(table);
    scratch_free(filter);
    return result;
}

static PyObject *
heap_positions(PyObject *module, PyObject *args)
{
    PyObject *o_addresses, *o_queries;
    if (!PyArg_ParseTuple(args, "OO:positions", &o_addresses, &o_queries)) {
        return NULL;
    }
    i64_arg addresses_in;
    if (get_i64_arg(o_addresses, "addresses", &addresses_in) < 0) {
        release_i64_arg(&addresses_in);
        return NULL;
    }
    PyObject *result = positions_of(get_state(module), addresses_in.data, addresses_in.len, o_queries);
    release_i64_arg(&addresses_in);
    return result;
}

PyDoc_STRVAR(object_positions_doc,
"object_positions(objects, queries, /)\n--\n\n"
"positions() of the objects' ids: for a list from gc.get_objects(), without the\n"
"array of a million ids that Python would build. Same result as\n"
"heapalgo._object_positions_py.");

static PyObject *
heap_object_positions(PyObject *module, PyObject *args)
{
    PyObject *objects, *o_queries;
    if (!PyArg_ParseTuple(args, "O!O:object_positions", &PyList_Type, &objects, &o_queries)) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(objects);
    int64_t *addresses = alloc_i64(n);
    if (addresses == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        addresses[i] = (int64_t)(uintptr_t)PyList_GET_ITEM(objects, i);
    }
    PyObject *result = positions_of(get_state(module), addresses, n, o_queries);
    scratch_free(addresses);
    return result;
}

/* ------------------------------------------------------------------------- */
/* group_totals                                                              */
/* ------------------------------------------------------------------------- */

PyDoc_STRVAR(group_totals_doc,
"group_totals(type_ids, group_of, ngroups, sizes, /, mask=None, samples=0)\n--\n\n"
"Per group of types: (counts, bytes, firsts). Same result as\n"
"heapalgo._group_totals_py.");

static PyObject *
heap_group_totals(PyObject *module, PyObject *args, PyObject *kwargs)
{
    heap_state *st = get_state(module);
    static char *kwlist[] = {"", "", "", "", "mask", "samples", NULL};
    PyObject *o_type_ids, *o_group_of, *o_sizes, *o_mask = Py_None;
    Py_ssize_t ngroups, samples = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOnO|On:group_totals", kwlist, &o_type_ids,
                                     &o_group_of, &ngroups, &o_sizes, &o_mask, &samples)) {
        return NULL;
    }
    i64_arg type_ids_in, group_of_in, sizes_in;
    memset(&type_ids_in, 0, sizeof(type_ids_in));
    memset(&group_of_in, 0, sizeof(group_of_in));
    memset(&sizes_in, 0, sizeof(sizes_in));
    bytes_arg mask_in;
    memset(&mask_in, 0, sizeof(mask_in));
    q_output out_counts, out_bytes, out_firsts;
    memset(&out_counts, 0, sizeof(out_counts));
    memset(&out_bytes, 0, sizeof(out_bytes));
    memset(&out_firsts, 0, sizeof(out_firsts));
    PyObject *result = NULL;

    if (ngroups < 0) {
        PyErr_SetString(PyExc_ValueError, "ngroups must be >= 0");
        goto done;
    }
    if (samples < 0) {
        PyErr_SetString(PyExc_ValueError, "samples must be >= 0");
        goto done;
    }
    if (get_i64_arg(o_type_ids, "type_ids", &type_ids_in) < 0
        || get_i64_arg(o_group_of, "group_of", &group_of_in) < 0
        || get_i64_arg(o_sizes, "sizes", &sizes_in) < 0
        || get_optional_bytes_arg(o_mask, "mask", &mask_in) < 0) {
        goto done;
    }
    Py_ssize_t n = type_ids_in.len, ntypes = group_of_in.len;
    if (sizes_in.len != n) {
        PyErr_Format(PyExc_ValueError, "sizes must have len(type_ids) = %zd items, not %zd", n,
                     sizes_in.len);
        goto done;
    }
    if (check_mask_len(&mask_in, "mask", "len(type_ids)", n) < 0) {
        goto done;
    }
    if (samples > 0 && ngroups > PY_SSIZE_T_MAX / 8 / samples) {
        PyErr_NoMemory();
        goto done;
    }
    if (q_output_new(st->zero_item, ngroups, 0, &out_counts) < 0
        || q_output_new(st->zero_item, ngroups, 0, &out_bytes) < 0
        || q_output_new(st->zero_item, ngroups * samples, -1, &out_firsts) < 0) {
        goto done;
    }
    const int64_t *type_ids = type_ids_in.data, *group_of = group_of_in.data;
    const int64_t *sizes = sizes_in.data;
    const unsigned char *mask = mask_in.data;
    for (Py_ssize_t t = 0; t < ntypes; t++) {
        if (group_of[t] < -1 || group_of[t] >= ngroups) {
            PyErr_Format(PyExc_ValueError,
                         "group_of[%zd] = %lld is neither -1 nor a group in [0, %zd)", t,
                         (long long)group_of[t], ngroups);
            goto done;
        }
    }
    int64_t *counts = out_counts.data, *bytes = out_bytes.data, *firsts = out_firsts.data;
    for (Py_ssize_t v = 0; v < n; v++) {
        int64_t t = type_ids[v];
        if (t < 0 || t >= ntypes) {
            PyErr_Format(PyExc_ValueError, "type_ids[%zd] = %lld is not a type in [0, %zd)", v,
                         (long long)t, ntypes);
            goto done;
        }
        if (sizes[v] < 0) {
            PyErr_Format(PyExc_ValueError, "sizes[%zd] = %lld is negative", v,
                         (long long)sizes[v]);
            goto done;
        }
        int64_t g = group_of[t];
        if (g < 0 || (mask != NULL && !mask[v])) {
            continue;
        }
        if (__builtin_add_overflow(bytes[g], sizes[v], &bytes[g])) {
            PyErr_SetString(PyExc_OverflowError, "group totals do not fit in 64 bits");
            goto done;
        }
        if (counts[g] < samples) {
            firsts[g * samples + counts[g]] = v;
        }
        counts[g]++;
    }
    q_output *const outs[] = {&out_counts, &out_bytes, &out_firsts};
    result = q_outputs_tuple(outs, 3);

done:
    q_output_finish(&out_counts, 0);
    q_output_finish(&out_bytes, 0);
    q_output_finish(&out_firsts, 0);
    release_i64_arg(&type_ids_in);
    release_i64_arg(&group_of_in);
    release_i64_arg(&sizes_in);
    release_bytes_arg(&mask_in);
    return result;
}

/* ------------------------------------------------------------------------- */
/* new_nodes                                                                 */
/* ------------------------------------------------------------------------- */

PyDoc_STRVAR(new_nodes_doc,
"new_nodes(before, type_ids, group_of, old_type_ids, old_group_of, reached, /)\n--\n\n"
"The mask of reached nodes that are new since an older graph. Same result\n"
"as heapalgo._new_nodes_py.");

static PyObject *
heap_new_nodes(PyObject *module, PyObject *args)
{
    PyObject *o_before, *o_type_ids, *o_group_of, *o_old_type_ids, *o_old_group_of, *o_reached;
    if (!PyArg_ParseTuple(args, "OOOOOO:new_nodes", &o_before, &o_type_ids, &o_group_of,
                          &o_old_type_ids, &o_old_group_of, &o_reached)) {
        return NULL;
    }
    i64_arg before_in, type_ids_in, group_of_in, old_type_ids_in, old_group_of_in, reached_in;
    memset(&before_in, 0, sizeof(before_in));
    memset(&type_ids_in, 0, sizeof(type_ids_in));
    memset(&group_of_in, 0, sizeof(group_of_in));
    memset(&old_type_ids_in, 0, sizeof(old_type_ids_in));
    memset(&old_group_of_in, 0, sizeof(old_group_of_in));
    memset(&reached_in, 0, sizeof(reached_in));
    PyObject *result = NULL, *mask_out = NULL;

    if (get_i64_arg(o_before, "before", &before_in) < 0
        || get_i64_arg(o_type_ids, "type_ids", &type_ids_in) < 0
        || get_i64_arg(o_group_of, "group_of", &group_of_in) < 0
        || get_i64_arg(o_old_type_ids, "old_type_ids", &old_type_ids_in) < 0
        || get_i64_arg(o_old_group_of, "old_group_of", &old_group_of_in) < 0
        || get_i64_arg(o_reached, "reached", &reached_in) < 0) {
        goto done;
    }
    Py_ssize_t n = before_in.len;
    if (type_ids_in.len != n || reached_in.len != n) {
        PyErr_Format(PyExc_ValueError,
                     "type_ids and reached must have len(before) = %zd items, not %zd and %zd", n,
                     type_ids_in.len, reached_in.len);
        goto done;
    }
    /* A bytearray runs no code when made: the checked buffers stay as they are. */
    mask_out = PyByteArray_FromStringAndSize(NULL, n);
    if (mask_out == NULL) {
        goto done;
    }
    unsigned char *mask = (unsigned char *)PyByteArray_AS_STRING(mask_out);
    const int64_t *before = before_in.data, *type_ids = type_ids_in.data;
    const int64_t *group_of = group_of_in.data, *old_type_ids = old_type_ids_in.data;
    const int64_t *old_group_of = old_group_of_in.data, *reached = reached_in.data;
    Py_ssize_t ntypes = group_of_in.len, nold = old_type_ids_in.len;
    Py_ssize_t nold_types = old_group_of_in.len;
    for (Py_ssize_t v = 0; v < n; v++) {
        int64_t j = before[v], t = type_ids[v];
        if (j < -1 || j >= nold) {
            PyErr_Format(PyExc_ValueError,
                         "before[%zd] = %lld is neither -1 nor a node in [0, %zd)", v,
                         (long long)j, nold);
            goto done;
        }
        if (t < 0 || t >= ntypes) {
            PyErr_Format(PyExc_ValueError, "type_ids[%zd] = %lld is not a type in [0, %zd)", v,
                         (long long)t, ntypes);
            goto done;
        }
        int is_new = j < 0;
        if (!is_new) {
            int64_t old_t = old_type_ids[j];
            if (old_t < 0 || old_t >= nold_types) {
                PyErr_Format(PyExc_ValueError,
                             "old_type_ids[%lld] = %lld is not a type in [0, %zd)", (long long)j,
                             (long long)old_t, nold_types);
                goto done;
            }
            is_new = old_group_of[old_t] != group_of[t];
        }
        mask[v] = (unsigned char)(is_new && reached[v] >= 0);
    }
    result = mask_out;
    mask_out = NULL;

done:
    Py_XDECREF(mask_out);
    release_i64_arg(&before_in);
    release_i64_arg(&type_ids_in);
    release_i64_arg(&group_of_in);
    release_i64_arg(&old_type_ids_in);
    release_i64_arg(&old_group_of_in);
    release_i64_arg(&reached_in);
    return result;
}

/* ------------------------------------------------------------------------- */
/* Module                                                                    */
/* ------------------------------------------------------------------------- */

static PyMethodDef heap_methods[] = {
    {"bfs", (PyCFunction)(void (*)(void))heap_bfs, METH_VARARGS | METH_KEYWORDS, bfs_doc},
    {"transpose", heap_transpose, METH_VARARGS, transpose_doc},
    {"dominators", (PyCFunction)(void (*)(void))heap_dominators, METH_VARARGS | METH_KEYWORDS,
     dominators_doc},
    {"retained_sizes", heap_retained_sizes, METH_VARARGS, retained_sizes_doc},
    {"top_indices", (PyCFunction)(void (*)(void))heap_top_indices, METH_VARARGS | METH_KEYWORDS,
     top_indices_doc},
    {"positions", heap_positions, METH_VARARGS, positions_doc},
    {"object_positions", heap_object_positions, METH_VARARGS, object_positions_doc},
    {"group_totals", (PyCFunction)(void (*)(void))heap_group_totals, METH_VARARGS | METH_KEYWORDS,
     group_totals_doc},
    {"new_nodes", heap_new_nodes, METH_VARARGS, new_nodes_doc},
    {NULL, NULL, 0, NULL},
};

static int
heap_exec(PyObject *module)
{
    heap_state *st = get_state(module);
    st->zero_item = new_q_zero_item(NULL);
    return st->zero_item == NULL ? -1 : 0;
}

static int
heap_traverse(PyObject *module, visitproc visit, void *arg)
{
    heap_state *st = get_state(module);
    if (st != NULL) {
        Py_VISIT(st->zero_item);
    }
    return 0;
}

static int
heap_clear(PyObject *module)
{
    heap_state *st = get_state(module);
    if (st != NULL) {
        Py_CLEAR(st->zero_item);
    }
    return 0;
}

static void
heap_free(void *module)
{
    heap_clear((PyObject *)module);
}

static PyModuleDef_Slot heap_slots[] = {
    {Py_mod_exec, heap_exec},
    {0, NULL},
};

static struct PyModuleDef heap_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "cyclescope._heapalgo",
    .m_doc = "C twins of the heap-graph algorithms in cyclescope.heapalgo.",
    .m_size = sizeof(heap_state),
    .m_methods = heap_methods,
    .m_slots = heap_slots,
    .m_traverse = heap_traverse,
    .m_clear = heap_clear,
    .m_free = heap_free,
};

PyMODINIT_FUNC
PyInit__heapalgo(void)
{
    return PyModuleDef_Init(&heap_module);
}
