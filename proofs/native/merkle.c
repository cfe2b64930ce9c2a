/* State roots of proofs.encoding in one C call (SHA-256 through OpenSSL's libcrypto).
 *
 * The same bytes, hashed in the same order, as proofs/encoding.py: this file adds no rule of its
 * own. For each tensor, in root order:
 *   chunk leaf i = H(chunk_prefix || header leaf || u64be(i) || data[i*cb : min((i+1)*cb, len)])
 *   tensor root  = RFC 6962 root (node prefix tensor_node) over [header leaf, chunk leaf 0, ...]
 *   state leaf   = H(state_leaf_prefix || tensor root)
 * and the state root is the RFC 6962 root (node prefix state_node) over the state leaves. The
 * Python side supplies the prefixes (0x00/0x01 || u8(len(domain)) || domain), the header leaves and
 * the chunk plan, so the formats stay defined in one place; tests hold both paths to the same bits.
 *
 * Why C: a small state (the default job's 38 KB, ten tensors) needs about forty hash calls besides
 * the one pass over its bytes; in Python that per-call work is twice the pass itself. Here it is
 * negligible, and the interpreter lock is released while hashing, so the checkpoint writer's
 * thread hashes beside the training thread.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST 32

typedef struct {
    const unsigned char *data;  /* the tensor's canonical bytes */
    Py_ssize_t len;
    int64_t chunks;              /* chunk count (0 for a tensor with no rows) */
    int64_t chunk_bytes;         /* bytes per chunk; the last one holds what remains */
    const unsigned char *header_leaf;
} tensor_t;

typedef struct {
    SHA256_CTX chunk;       /* primed with chunk_prefix (the header leaf follows per tensor) */
    SHA256_CTX tensor_node; /* primed with 0x01 || dom(tensor) */
    SHA256_CTX state_leaf;  /* primed with 0x00 || dom(state) */
    SHA256_CTX state_node;  /* primed with 0x01 || dom(state) */
} prefixes_t;

static void prime(SHA256_CTX *ctx, const unsigned char *prefix, Py_ssize_t len) {
    SHA256_Init(ctx);
    SHA256_Update(ctx, prefix, (size_t)len);
}

/* RFC 6962 section 2.1: root(D[0:n]) = node(root(D[0:k]), root(D[k:n])), k the largest power of
 * two below n; root of one leaf hash is the leaf hash itself. n >= 1. */
static void merkle_root(const unsigned char *leaves, int64_t n, const SHA256_CTX *node, unsigned char *out) {
    if (n == 1) {
        memcpy(out, leaves, DIGEST);
        return;
    }
    int64_t k = 1;
    while (k * 2 < n) k *= 2;
    unsigned char children[2 * DIGEST];
    merkle_root(leaves, k, node, children);
    merkle_root(leaves + k * DIGEST, n - k, node, children + DIGEST);
    SHA256_CTX ctx = *node;
    SHA256_Update(&ctx, children, sizeof children);
    SHA256_Final(out, &ctx);
}

/* The state leaf of one tensor into out; 0, or -1 when out of memory. */
static int state_leaf(const tensor_t *t, const prefixes_t *p, unsigned char *out) {
    unsigned char small[3 * DIGEST];
    unsigned char *leaves = small;
    if (t->chunks + 1 > 3) {
        leaves = malloc((size_t)(t->chunks + 1) * DIGEST);
        if (leaves == NULL) return -1;
    }
    memcpy(leaves, t->header_leaf, DIGEST);
    SHA256_CTX base = p->chunk;
    SHA256_Update(&base, t->header_leaf, DIGEST);
    for (int64_t i = 0; i < t->chunks; i++) {
        unsigned char index[8];
        for (int b = 0; b < 8; b++) index[b] = (unsigned char)((uint64_t)i >> (56 - 8 * b));
        Py_ssize_t start = (Py_ssize_t)(i * t->chunk_bytes);
        Py_ssize_t stop = start + (Py_ssize_t)t->chunk_bytes;
        if (stop > t->len) stop = t->len;
        SHA256_CTX ctx = base;
        SHA256_Update(&ctx, index, sizeof index);
        SHA256_Update(&ctx, t->data + start, (size_t)(stop - start));
        SHA256_Final(leaves + (i + 1) * DIGEST, &ctx);
    }
    unsigned char root[DIGEST];
    merkle_root(leaves, t->chunks + 1, &p->tensor_node, root);
    if (leaves != small) free(leaves);
    SHA256_CTX ctx = p->state_leaf;
    SHA256_Update(&ctx, root, DIGEST);
    SHA256_Final(out, &ctx);
    return 0;
}

/* Whether a float tensor holds a NaN: float_bytes is the size of its IEEE components (2, 4, 8;
 * a complex number is two of them), 0 for a tensor that is not float. */
static int has_nan(const unsigned char *data, Py_ssize_t len, int64_t float_bytes) {
    int found = 0;
    if (float_bytes == 4) {
        const uint32_t *v = (const uint32_t *)data;
        for (Py_ssize_t i = 0; i < len / 4; i++) found |= (v[i] & 0x7fffffffu) > 0x7f800000u;
    } else if (float_bytes == 8) {
        const uint64_t *v = (const uint64_t *)data;
        for (Py_ssize_t i = 0; i < len / 8; i++) found |= (v[i] & 0x7fffffffffffffffull) > 0x7ff0000000000000ull;
    } else if (float_bytes == 2) {
        const uint16_t *v = (const uint16_t *)data;
        for (Py_ssize_t i = 0; i < len / 2; i++) found |= (v[i] & 0x7fffu) > 0x7c00u;
    }
    return found;
}

typedef struct {
    Py_buffer header_leaves, counts, chunk_bytes, lengths, float_bytes;
    Py_buffer chunk_prefix, tensor_node, state_leaf, state_node;
} plan_t;

static void release_plan(plan_t *plan) {
    Py_buffer *all[] = {&plan->header_leaves, &plan->counts, &plan->chunk_bytes, &plan->lengths,
                        &plan->float_bytes, &plan->chunk_prefix, &plan->tensor_node, &plan->state_leaf, &plan->state_node};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->obj != NULL) PyBuffer_Release(all[i]);
}

/* plan = (header leaves (32 n bytes), chunk counts, chunk bytes, tensor byte lengths, float
 * component bytes (int64 n each), chunk prefix, tensor node prefix, state leaf prefix, state node
 * prefix). */
static int parse_plan(PyObject *obj, plan_t *plan, Py_ssize_t *n) {
    memset(plan, 0, sizeof *plan);
    if (!PyArg_ParseTuple(obj, "y*y*y*y*y*y*y*y*y*;plan must be 9 byte strings", &plan->header_leaves,
                          &plan->counts, &plan->chunk_bytes, &plan->lengths, &plan->float_bytes,
                          &plan->chunk_prefix, &plan->tensor_node, &plan->state_leaf, &plan->state_node))
        return -1;
    *n = plan->counts.len / (Py_ssize_t)sizeof(int64_t);
    if (*n < 1 || plan->header_leaves.len != *n * DIGEST || plan->chunk_bytes.len != plan->counts.len
        || plan->lengths.len != plan->counts.len || plan->float_bytes.len != plan->counts.len) {
        PyErr_SetString(PyExc_ValueError, "state plan: inconsistent sizes (one header leaf and four int64 per tensor)");
        return -1;
    }
    return 0;
}

/* The state root, or None when check_nans and a float tensor holds a NaN (the caller makes its
 * NaNs canonical and asks again without the check). */
static PyObject *compute(tensor_t *tensors, Py_ssize_t n, const plan_t *plan, int check_nans) {
    prefixes_t p;
    prime(&p.chunk, plan->chunk_prefix.buf, plan->chunk_prefix.len);
    prime(&p.tensor_node, plan->tensor_node.buf, plan->tensor_node.len);
    prime(&p.state_leaf, plan->state_leaf.buf, plan->state_leaf.len);
    prime(&p.state_node, plan->state_node.buf, plan->state_node.len);
    unsigned char *leaves = malloc((size_t)n * DIGEST);
    if (leaves == NULL) return PyErr_NoMemory();
    unsigned char root[DIGEST];
    int failed = 0, nan = 0;
    const int64_t *float_bytes = plan->float_bytes.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && check_nans && !nan; i++) nan = has_nan(tensors[i].data, tensors[i].len, float_bytes[i]);
    for (Py_ssize_t i = 0; i < n && !failed && !nan; i++) failed = state_leaf(&tensors[i], &p, leaves + i * DIGEST);
    if (!failed && !nan) merkle_root(leaves, n, &p.state_node, root);
    Py_END_ALLOW_THREADS
    free(leaves);
    if (failed) return PyErr_NoMemory();
    if (nan) Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)root, DIGEST);
}

static int fill_tensors(tensor_t *tensors, Py_ssize_t n, const plan_t *plan) {
    const int64_t *counts = plan->counts.buf, *chunk_bytes = plan->chunk_bytes.buf, *lengths = plan->lengths.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (counts[i] < 0 || chunk_bytes[i] < 0 || tensors[i].len != lengths[i]
            || (counts[i] > 0 && (counts[i] - 1) * chunk_bytes[i] > lengths[i])) {
            PyErr_Format(PyExc_ValueError, "state plan: tensor %zd has %zd bytes, the plan expects %lld in %lld chunks",
                         i, tensors[i].len, (long long)lengths[i], (long long)counts[i]);
            return -1;
        }
        tensors[i].chunks = counts[i];
        tensors[i].chunk_bytes = chunk_bytes[i];
        tensors[i].header_leaf = (const unsigned char *)plan->header_leaves.buf + i * DIGEST;
    }
    return 0;
}

/* One buffer view and one tensor slot per tensor (zeroed); 0, or -1 with MemoryError set. */
static int alloc_views(Py_ssize_t n, Py_buffer **views, tensor_t **tensors) {
    *views = calloc((size_t)n, sizeof **views);
    *tensors = calloc((size_t)n, sizeof **tensors);
    if (*views == NULL || *tensors == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* state_root(buffers, plan, check_nans): buffers = one contiguous buffer per tensor, root order. */
static PyObject *py_state_root(PyObject *self, PyObject *args) {
    PyObject *buffers, *plan_obj;
    int check_nans;
    if (!PyArg_ParseTuple(args, "OOp", &buffers, &plan_obj, &check_nans)) return NULL;
    plan_t plan;
    Py_ssize_t n;
    if (parse_plan(plan_obj, &plan, &n) < 0) {
        release_plan(&plan);
        return NULL;
    }
    PyObject *seq = PySequence_Fast(buffers, "buffers must be a sequence");
    PyObject *result = NULL;
    Py_buffer *views = NULL;
    tensor_t *tensors = NULL;
    Py_ssize_t held = 0;
    if (seq == NULL) goto done;
    if (PySequence_Fast_GET_SIZE(seq) != n) {
        PyErr_Format(PyExc_ValueError, "state plan has %zd tensors, got %zd buffers", n, PySequence_Fast_GET_SIZE(seq));
        goto done;
    }
    if (alloc_views(n, &views, &tensors) < 0) goto done;
    for (; held < n; held++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, held), &views[held], PyBUF_C_CONTIGUOUS) < 0) goto done;
        tensors[held].data = views[held].buf;
        tensors[held].len = views[held].len;
    }
    if (fill_tensors(tensors, n, &plan) == 0) result = compute(tensors, n, &plan, check_nans);
done:
    for (Py_ssize_t i = 0; i < held; i++) PyBuffer_Release(&views[i]);
    free(views);
    free(tensors);
    Py_XDECREF(seq);
    release_plan(&plan);
    return result;
}

/* state_root_arrays(arrays, expected, plan): the state root of a list of arrays (root order)
 * expected to be exactly the canonical arrays the plan was made for, or None when one is not:
 * expected = (array type, ndims (int64 n), shapes (int64, concatenated), buffer formats (n byte
 * strings)). Each array must be of exactly that type, C-contiguous, of that shape and buffer
 * format, and hold no NaN; anything else is left to the Python path, which checks, converts and
 * explains. It spares a small state's Python-side checks (ten tensors' worth cost as much as the
 * hashing). */
static PyObject *py_state_root_arrays(PyObject *self, PyObject *args) {
    PyObject *arrays, *expected, *plan_obj, *type, *formats;
    Py_buffer ndims_buf = {0}, shapes_buf = {0};
    if (!PyArg_ParseTuple(args, "OOO", &arrays, &expected, &plan_obj)) return NULL;
    if (!PyArg_ParseTuple(expected, "Oy*y*O", &type, &ndims_buf, &shapes_buf, &formats)) return NULL;
    plan_t plan;
    Py_ssize_t n;
    PyObject *result = NULL;
    Py_buffer *views = NULL;
    tensor_t *tensors = NULL;
    Py_ssize_t held = 0, shape_at = 0;
    int matches = 1;
    if (parse_plan(plan_obj, &plan, &n) < 0) goto done;
    if (!PyList_Check(arrays) || PyList_GET_SIZE(arrays) != n || !PyTuple_Check(formats) || PyTuple_GET_SIZE(formats) != n
        || ndims_buf.len != n * (Py_ssize_t)sizeof(int64_t)) {
        matches = 0;
        goto done;
    }
    if (alloc_views(n, &views, &tensors) < 0) goto done;
    const int64_t *ndims = ndims_buf.buf, *shapes = shapes_buf.buf;
    Py_ssize_t shape_count = shapes_buf.len / (Py_ssize_t)sizeof(int64_t);
    for (; held < n && matches; held++) {
        PyObject *array = PyList_GET_ITEM(arrays, held), *format = PyTuple_GET_ITEM(formats, held);
        if ((PyObject *)Py_TYPE(array) != type || !PyBytes_Check(format)) {
            matches = 0;
            break;
        }
        if (PyObject_GetBuffer(array, &views[held], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
            PyErr_Clear();  /* not C-contiguous, or not exportable: the Python path decides */
            matches = 0;
            break;
        }
        Py_buffer *v = &views[held];
        matches = v->ndim == ndims[held] && shape_at + v->ndim <= shape_count && v->format != NULL
                  && strcmp(v->format, PyBytes_AS_STRING(format)) == 0;
        for (int d = 0; matches && d < v->ndim; d++) matches = v->shape[d] == shapes[shape_at + d];
        shape_at += v->ndim;
        tensors[held].data = v->buf;
        tensors[held].len = v->len;
    }
    if (matches && fill_tensors(tensors, n, &plan) == 0) result = compute(tensors, n, &plan, 1);
    else if (!matches) PyErr_Clear();
done:
    for (Py_ssize_t i = 0; i < held; i++) PyBuffer_Release(&views[i]);
    free(views);
    free(tensors);
    release_plan(&plan);
    PyBuffer_Release(&ndims_buf);
    PyBuffer_Release(&shapes_buf);
    if (result == NULL && !PyErr_Occurred()) Py_RETURN_NONE;
    return result;
}

/* buffer_state_root(buffer, starts, plan, check_nans): the tensors at byte offsets starts (int64
 * n, root order) of one contiguous buffer, each plan.lengths[i] bytes long. */
static PyObject *py_buffer_state_root(PyObject *self, PyObject *args) {
    Py_buffer buffer = {0}, starts = {0};
    PyObject *plan_obj;
    int check_nans;
    if (!PyArg_ParseTuple(args, "y*y*Op", &buffer, &starts, &plan_obj, &check_nans)) return NULL;
    plan_t plan;
    Py_ssize_t n;
    PyObject *result = NULL;
    tensor_t *tensors = NULL;
    if (parse_plan(plan_obj, &plan, &n) < 0) goto done;
    if (starts.len != n * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "buffer state root: one int64 start per tensor");
        goto done;
    }
    tensors = calloc((size_t)n, sizeof *tensors);
    if (tensors == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const int64_t *start = starts.buf, *lengths = plan.lengths.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (start[i] < 0 || lengths[i] < 0 || start[i] + lengths[i] > buffer.len) {
            PyErr_Format(PyExc_ValueError, "buffer state root: tensor %zd at bytes %lld..%lld of a %zd-byte buffer",
                         i, (long long)start[i], (long long)(start[i] + lengths[i]), buffer.len);
            goto done;
        }
        tensors[i].data = (const unsigned char *)buffer.buf + start[i];
        tensors[i].len = (Py_ssize_t)lengths[i];
    }
    if (fill_tensors(tensors, n, &plan) == 0) result = compute(tensors, n, &plan, check_nans);
done:
    free(tensors);
    release_plan(&plan);
    PyBuffer_Release(&buffer);
    PyBuffer_Release(&starts);
    return result;
}

static PyMethodDef methods[] = {
    {"state_root", py_state_root, METH_VARARGS, "SHA-256 state root of per-tensor buffers (proofs.encoding)."},
    {"state_root_arrays", py_state_root_arrays, METH_VARARGS, "SHA-256 state root of the arrays a plan expects, or None."},
    {"buffer_state_root", py_buffer_state_root, METH_VARARGS, "SHA-256 state root of tensors in one buffer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pinpoint_merkle", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pinpoint_merkle(void) { return PyModule_Create(&module); }
