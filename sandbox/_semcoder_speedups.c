/* The tracer's two hot loops in C: optional, byte for byte the same as their Python forms.

   diff_locals: sandbox/_tracer_child.py's `diff_locals` (the locals' reprs that changed since an activation's
   previous event), run for every traced line inside the sandbox. json_line: sandbox/tracer.py's `_json_line`
   (a row's `semcoder trace` JSON line from the child's compact record, every field checked), run on the host for
   every row. Both Python forms stay the reference: tests/tracer/test_speedups.py runs both on the same inputs
   and compares. The extension is built at install time where a compiler exists (setuptools, optional=True);
   without it everything runs the Python forms. Inside the sandbox it is loaded only by an interpreter whose
   extension suffix is the one it was built for (sandbox/tracer.py ships it as a job file).

   Only exact builtin types are handled here; anything else goes to the Python callables passed in, which may run
   user code (a __repr__): every reference held across such a call is owned, and a mapping that changes size
   meanwhile raises as dict iteration does. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <string.h>

/* The same constants as sandbox/_tracer_child.py's (_FAST_BUDGET, _SMALL_INT, _LOCAL_OVERHEAD). */
#define FAST_BUDGET 256
#define SMALL_INT 1000000000000000LL
#define LOCAL_OVERHEAD 8
#define STRING_BUDGET (32 * FAST_BUDGET) /* the characters of strings a container's fast repr may hold */

static PyObject *encode_ascii; /* _json.encode_basestring_ascii */

/* int (not bool), float, bool, complex, None: _SCALARS. */
static int is_scalar(PyObject *item) {
    return PyLong_CheckExact(item) || PyFloat_CheckExact(item) || PyBool_Check(item) ||
           PyComplex_CheckExact(item) || item == Py_None;
}

static PyObject *repr_cut(PyObject *item, Py_ssize_t cap) {
    PyObject *text = PyObject_Repr(item);
    if (text == NULL || PyUnicode_GET_LENGTH(text) <= cap) return text;
    PyObject *cut = PyUnicode_Substring(text, 0, cap);
    Py_DECREF(text);
    return cut;
}

/* The shadow check of `diff_locals`: 1 when `item` is the shadow's value and still holds the same items. */
static int unchanged(PyObject *item, PyObject *shadow, PyObject *same_items) {
    if (!PyTuple_CheckExact(shadow) || PyTuple_GET_SIZE(shadow) != 2 || PyTuple_GET_ITEM(shadow, 0) != item)
        return 0;
    PyObject *items = PyTuple_GET_ITEM(shadow, 1);
    if (items == Py_None) return 1;
    if (PyTuple_CheckExact(items) && PyTuple_GET_SIZE(items) == 3 && PyTuple_GET_ITEM(items, 1) == Py_None &&
        PyTuple_GET_ITEM(items, 2) == Py_False && PyTuple_CheckExact(PyTuple_GET_ITEM(items, 0)) &&
        (PyList_CheckExact(item) || PyTuple_CheckExact(item))) {
        /* a whole flat sequence: same length, same items */
        PyObject *old = PyTuple_GET_ITEM(items, 0);
        Py_ssize_t n = PySequence_Fast_GET_SIZE(item);
        if (n != PyTuple_GET_SIZE(old)) return 0;
        PyObject **now = PySequence_Fast_ITEMS(item);
        for (Py_ssize_t i = 0; i < n; i++)
            if (now[i] != PyTuple_GET_ITEM(old, i)) return 0;
        return 1;
    }
    if (PyDict_CheckExact(item) && PyTuple_CheckExact(items) && PyTuple_GET_SIZE(items) == 3 &&
        PyTuple_CheckExact(PyTuple_GET_ITEM(items, 0)) && PyTuple_CheckExact(PyTuple_GET_ITEM(items, 1))) {
        /* a dict: same keys and values, by identity, in order */
        PyObject *keys = PyTuple_GET_ITEM(items, 0), *values = PyTuple_GET_ITEM(items, 1), *key, *value;
        if (PyDict_GET_SIZE(item) != PyTuple_GET_SIZE(keys) || PyTuple_GET_SIZE(values) != PyTuple_GET_SIZE(keys))
            return 0;
        Py_ssize_t pos = 0, i = 0;
        while (PyDict_Next(item, &pos, &key, &value)) {
            if (key != PyTuple_GET_ITEM(keys, i) || value != PyTuple_GET_ITEM(values, i)) return 0;
            i++;
        }
        return 1;
    }
    PyObject *same = PyObject_CallFunctionObjArgs(same_items, item, items, NULL);
    if (same == NULL) return -1;
    int result = PyObject_IsTrue(same);
    Py_DECREF(same);
    return result;
}

/* _small_builtin's verdict on a list or tuple (not only of scalars) no longer than its head: 1 small with immutable
   items (strings only, up to the string budget; or tuples of scalars), 0 small with mutable items (lists of
   scalars among them), -1 not one of these shapes (the Python side decides). */
static int small_sequence(PyObject **values, Py_ssize_t n) {
    Py_ssize_t i, chars = 0, inner = 0;
    for (i = 0; i < n && PyUnicode_CheckExact(values[i]); i++) chars += PyUnicode_GET_LENGTH(values[i]);
    if (i == n) return chars <= STRING_BUDGET ? 1 : -1;
    int immutable = 1;
    for (i = 0; i < n; i++) {
        PyObject *value = values[i];
        if (PyList_CheckExact(value)) immutable = 0;
        else if (!PyTuple_CheckExact(value)) return -1;
        inner += PySequence_Fast_GET_SIZE(value);
    }
    if (inner > FAST_BUDGET) return -1;
    for (i = 0; i < n; i++) {
        PyObject **items = PySequence_Fast_ITEMS(values[i]);
        for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(values[i]); j++)
            if (!is_scalar(items[j])) return -1;
    }
    return immutable;
}

/* _plain_leaves: all scalars, or scalars and strings of STRING_BUDGET characters in all. */
static int plain_leaves(PyObject *list) {
    Py_ssize_t chars = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *value = PyList_GET_ITEM(list, i);
        if (PyUnicode_CheckExact(value)) chars += PyUnicode_GET_LENGTH(value);
        else if (!is_scalar(value)) return 0;
    }
    return chars <= STRING_BUDGET;
}

/* The text of a short list or tuple and its shadow: (item, (tuple(item), None, False)) when its items are
   immutable, none (NULL) otherwise. */
static PyObject *sequence_shadow(PyObject *item, Py_ssize_t cap, int immutable, PyObject **shadow) {
    if (immutable) {
        PyObject *copy = PySequence_Tuple(item);
        PyObject *items = copy ? PyTuple_Pack(3, copy, Py_None, Py_False) : NULL;
        Py_XDECREF(copy);
        *shadow = items ? PyTuple_Pack(2, item, items) : NULL;
        Py_XDECREF(items);
        if (*shadow == NULL) return NULL;
    }
    return repr_cut(item, cap);
}

/* (text, shadow or NULL for "no shadow") of one changed local; NULL text on error. */
static PyObject *render(PyObject *item, Py_ssize_t cap, PyObject *slow, PyObject **shadow) {
    *shadow = NULL;
    if (PyFloat_CheckExact(item) || PyBool_Check(item) || item == Py_None) {
        *shadow = PyTuple_Pack(2, item, Py_None);
        return *shadow ? PyObject_Repr(item) : NULL;
    }
    if (PyLong_CheckExact(item)) {
        int overflow;
        long long value = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (value == -1 && PyErr_Occurred()) return NULL;
        if (!overflow && -SMALL_INT < value && value < SMALL_INT) {
            *shadow = PyTuple_Pack(2, item, Py_None);
            return *shadow ? PyObject_Repr(item) : NULL;
        }
    } else if (PyUnicode_CheckExact(item) && PyUnicode_GET_LENGTH(item) <= cap) {
        *shadow = PyTuple_Pack(2, item, Py_None);
        return *shadow ? repr_cut(item, cap) : NULL;
    } else if ((PyList_CheckExact(item) || PyTuple_CheckExact(item)) && PySequence_Fast_GET_SIZE(item) <= FAST_BUDGET) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(item);
        PyObject **values = PySequence_Fast_ITEMS(item);
        Py_ssize_t i = 0;
        while (i < n && is_scalar(values[i])) i++;
        if (i == n) /* scalars only */
            return sequence_shadow(item, cap, 1, shadow);
        if (n <= cap / 3 + 1) { /* no longer than its head: what fast_container_repr renders whole */
            int immutable = small_sequence(values, n);
            if (immutable >= 0) return sequence_shadow(item, cap, immutable, shadow);
        }
    } else if (PyDict_CheckExact(item) && PyDict_GET_SIZE(item) <= Py_MAX(cap / 3 + 1, FAST_BUDGET)) {
        PyObject *keys = PyDict_Keys(item), *values = keys ? PyDict_Values(item) : NULL;
        if (values != NULL && plain_leaves(keys) && plain_leaves(values)) {
            PyObject *key_items = PyList_AsTuple(keys), *value_items = PyList_AsTuple(values);
            PyObject *items = key_items && value_items ? PyTuple_Pack(3, key_items, value_items, Py_False) : NULL;
            Py_XDECREF(key_items);
            Py_XDECREF(value_items);
            Py_DECREF(keys);
            Py_DECREF(values);
            *shadow = items ? PyTuple_Pack(2, item, items) : NULL;
            Py_XDECREF(items);
            return *shadow ? repr_cut(item, cap) : NULL;
        }
        Py_XDECREF(keys);
        Py_XDECREF(values);
        if (PyErr_Occurred()) return NULL;
    }
    /* everything else: the Python side (containers, user types), which returns (text, shadow items or None) */
    PyObject *pair = PyObject_CallOneArg(slow, item);
    if (pair == NULL) return NULL;
    if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
        Py_DECREF(pair);
        PyErr_SetString(PyExc_TypeError, "slow() must return (text, items)");
        return NULL;
    }
    PyObject *text = PyTuple_GET_ITEM(pair, 0), *items = PyTuple_GET_ITEM(pair, 1);
    Py_INCREF(text);
    if (items != Py_None && (*shadow = PyTuple_Pack(2, item, items)) == NULL) Py_CLEAR(text);
    Py_DECREF(pair);
    return text;
}

/* dict.pop(key, None), the result dropped (PyDict_Pop is 3.13's). */
static int discard(PyObject *dict, PyObject *key) {
    int present = PyDict_Contains(dict, key);
    return present <= 0 ? present : PyDict_DelItem(dict, key);
}

static int add_size(Py_ssize_t *size, PyObject *object, int sign) {
    Py_ssize_t length = PyObject_Length(object);
    if (length < 0) return -1;
    *size += sign * length;
    return 0;
}

/* The body of diff_locals: the new delta and removed (None or a list) in *delta_out and *removed_out. */
static int diff(PyObject *names, PyObject *current, PyObject *shadows, Py_ssize_t *size_io, Py_ssize_t cap,
                PyObject *slow, PyObject *same_items, PyObject **delta_out, PyObject **removed_out) {
    Py_ssize_t size = *size_io;
    PyObject *delta = PyDict_New();
    if (delta == NULL) return -1;
    Py_ssize_t pos = 0, count = PyDict_GET_SIZE(names);
    PyObject *key, *value;
    while (PyDict_Next(names, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) continue; /* a class body's namespace may hold any key */
        PyObject *name = key, *item = value, *text = NULL, *shadow = NULL;
        Py_INCREF(name);
        Py_INCREF(item);
        PyObject *old_shadow = PyDict_GetItemWithError(shadows, name); /* borrowed; no user code after it */
        int same = 0;
        if (old_shadow != NULL) {
            Py_INCREF(old_shadow);
            same = unchanged(item, old_shadow, same_items);
            Py_DECREF(old_shadow);
        } else if (PyErr_Occurred()) {
            same = -1;
        }
        if (same == 0) {
            text = render(item, cap, slow, &shadow);
            if (text == NULL) same = -1;
            else if (shadow != NULL ? PyDict_SetItem(shadows, name, shadow) < 0
                                    : discard(shadows, name) < 0)
                same = -1;
        }
        if (same == 0) {
            PyObject *old = PyDict_GetItemWithError(current, name);
            int differ = old == NULL ? (PyErr_Occurred() ? -1 : 1) : PyObject_RichCompareBool(old, text, Py_NE);
            Py_XINCREF(old);
            if (differ < 0) same = -1;
            else if (differ) {
                if (PyDict_SetItem(delta, name, text) < 0 || PyDict_SetItem(current, name, text) < 0 ||
                    add_size(&size, text, 1) < 0)
                    same = -1;
                else if (old != NULL ? add_size(&size, old, -1) < 0 : add_size(&size, name, 1) < 0)
                    same = -1;
                else if (old == NULL)
                    size += LOCAL_OVERHEAD;
            }
            Py_XDECREF(old);
        }
        Py_XDECREF(text);
        Py_XDECREF(shadow);
        Py_DECREF(name);
        Py_DECREF(item);
        if (same < 0) goto fail;
        if (PyDict_GET_SIZE(names) != count) {
            PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
            goto fail;
        }
    }
    PyObject *removed = Py_None;
    Py_INCREF(removed);
    if (PyDict_GET_SIZE(current) > PyDict_GET_SIZE(names)) {
        Py_DECREF(removed);
        removed = PyList_New(0);
        if (removed == NULL) goto fail;
        pos = 0;
        while (PyDict_Next(current, &pos, &key, &value)) {
            int present = PyDict_Contains(names, key);
            if (present < 0 || (!present && PyList_Append(removed, key) < 0)) goto fail_removed;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(removed); i++) {
            PyObject *name = PyList_GET_ITEM(removed, i), *old = PyDict_GetItemWithError(current, name);
            if (old == NULL) {
                if (PyErr_Occurred()) goto fail_removed;
                PyErr_SetObject(PyExc_KeyError, name);  /* as current.pop(name) would */
                goto fail_removed;
            }
            Py_INCREF(old);
            int bad = PyDict_DelItem(current, name) < 0 || add_size(&size, old, -1) < 0 || add_size(&size, name, -1) < 0;
            Py_DECREF(old);
            if (bad || discard(shadows, name) < 0) goto fail_removed;
            size -= LOCAL_OVERHEAD;
        }
    }
    *delta_out = delta;
    *removed_out = removed;
    *size_io = size;
    return 0;
fail_removed:
    Py_DECREF(removed);
fail:
    Py_DECREF(delta);
    return -1;
}

static PyObject *diff_locals(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "diff_locals(names, current, shadows, size, cap, slow, same_items)");
        return NULL;
    }
    if (!PyDict_CheckExact(args[0]) || !PyDict_CheckExact(args[1]) || !PyDict_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "diff_locals needs exact dicts");
        return NULL;
    }
    Py_ssize_t size = PyLong_AsSsize_t(args[3]), cap = PyLong_AsSsize_t(args[4]);
    if ((size == -1 || cap == -1) && PyErr_Occurred()) return NULL;
    PyObject *delta, *removed;
    if (diff(args[0], args[1], args[2], &size, cap, args[5], args[6], &delta, &removed) < 0) return NULL;
    return Py_BuildValue("(NNn)", delta, removed, size);
}

/* ------------------------------------------------------------------------------------------- json_line */

static PyObject *kind_names[4]; /* call, line, return, exception */

static PyObject *encode(PyObject *text) { return PyObject_CallOneArg(encode_ascii, text); }

static int str_or_none(PyObject *value) { return value == Py_None || PyUnicode_CheckExact(value); }

static PyObject *not_a(const char *what) {
    PyErr_Format(PyExc_TypeError, "not %s", what);
    return NULL;
}

/* Append to `parts`, stealing `text` (NULL: an error already set). */
static int put(PyObject *parts, PyObject *text) {
    if (text == NULL) return -1;
    int status = PyList_Append(parts, text);
    Py_DECREF(text);
    return status;
}

static int put_const(PyObject *parts, const char *text) { return put(parts, PyUnicode_FromString(text)); }

static int known_kind(PyObject *kind) {
    if (!PyUnicode_CheckExact(kind)) return 0;
    for (int i = 0; i < 4; i++)
        if (PyUnicode_Compare(kind, kind_names[i]) == 0) return 1;
    if (PyErr_Occurred()) PyErr_Clear();
    return 0;
}

/* One activation's locals object, from its encoded pieces (in the snapshot's order). */
static PyObject *locals_text(PyObject *pieces) {
    PyObject *values = PyDict_Values(pieces);
    if (values == NULL) return NULL;
    PyObject *separator = PyUnicode_FromString(", ");
    PyObject *body = separator ? PyUnicode_Join(separator, values) : NULL;
    Py_XDECREF(separator);
    Py_DECREF(values);
    if (body == NULL) return NULL;
    PyObject *text = PyUnicode_FromFormat("{%U}", body);
    Py_DECREF(body);
    return text;
}

static PyObject *json_line(PyObject *module, PyObject *item) {
    if (!PyDict_CheckExact(item)) return not_a("a trace record");
    static const char *fields[] = {"return_repr", "exception", "events", "frames", "truncated", "output"};
    PyObject *field[6];
    for (int i = 0; i < 6; i++) {
        field[i] = PyDict_GetItemString(item, fields[i]); /* borrowed; the dict is ours */
        if (field[i] == NULL) {
            PyErr_SetString(PyExc_KeyError, fields[i]);
            return NULL;
        }
    }
    PyObject *return_repr = field[0], *exception = field[1], *compact = field[2], *frames = field[3];
    if (!(str_or_none(return_repr) && str_or_none(exception) && PyBool_Check(field[4]) &&
          PyUnicode_CheckExact(field[5]) && PyList_CheckExact(compact) && PyList_CheckExact(frames)))
        return not_a("a trace record");
    Py_ssize_t count = PyList_GET_SIZE(frames);
    PyObject *funcs = PyList_New(count), *pieces = PyList_New(count), *texts = PyList_New(count);
    PyObject *parts = PyList_New(0), *result = NULL;
    if (!funcs || !pieces || !texts || !parts) goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *frame = PyList_GET_ITEM(frames, i);
        if (!PyList_CheckExact(frame) || PyList_GET_SIZE(frame) != 2) {
            /* unpacking a 2-sequence: the Python form accepts any, the child sends lists */
            if (!PyTuple_CheckExact(frame) || PyTuple_GET_SIZE(frame) != 2) {
                not_a("an activation");
                goto done;
            }
        }
        PyObject *func = PySequence_Fast_GET_ITEM(frame, 0), *depth = PySequence_Fast_GET_ITEM(frame, 1);
        if (!PyUnicode_CheckExact(func) || !PyLong_CheckExact(depth)) {
            not_a("an activation");
            goto done;
        }
        PyObject *encoded = encode(func);
        if (encoded == NULL) goto done;
        PyList_SET_ITEM(funcs, i, encoded);
        Py_INCREF(Py_None);
        PyList_SET_ITEM(pieces, i, Py_None);
        Py_INCREF(Py_None);
        PyList_SET_ITEM(texts, i, Py_None);
    }
    if (put_const(parts, "{\"return_repr\": ") < 0 ||
        put(parts, return_repr == Py_None ? PyUnicode_FromString("null") : encode(return_repr)) < 0 ||
        put_const(parts, ", \"exception\": ") < 0 ||
        put(parts, exception == Py_None ? PyUnicode_FromString("null") : encode(exception)) < 0 ||
        put_const(parts, ", \"events\": [") < 0)
        goto done;
    Py_ssize_t events = PyList_GET_SIZE(compact);
    for (Py_ssize_t e = 0; e < events; e++) {
        PyObject *event = PyList_GET_ITEM(compact, e);
        if (!PyList_CheckExact(event) && !PyTuple_CheckExact(event)) {
            not_a("an event");
            goto done;
        }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(event);
        if (n != 4 && n != 6) {
            PyErr_SetString(PyExc_ValueError, "not an event");
            goto done;
        }
        PyObject **fields_ = PySequence_Fast_ITEMS(event);
        PyObject *kind = fields_[0], *line = fields_[1], *delta = fields_[2], *frame = fields_[3];
        PyObject *removed = n == 6 ? fields_[4] : Py_None, *value = n == 6 ? fields_[5] : Py_None;
        if (n == 6 && (!str_or_none(value) || !(removed == Py_None || PyList_CheckExact(removed)))) {
            not_a("an event");
            goto done;
        }
        if (!known_kind(kind) || !PyLong_CheckExact(line) || !PyDict_CheckExact(delta) || !PyLong_CheckExact(frame)) {
            not_a("an event");
            goto done;
        }
        Py_ssize_t index = PyLong_AsSsize_t(frame);
        if (index == -1 && PyErr_Occurred()) PyErr_Clear(); /* out of range: refused below */
        int known = 0 <= index && index < count && PyList_GET_ITEM(texts, index) != Py_None;
        int has_removed = removed != Py_None && PyList_GET_SIZE(removed) > 0;
        if (PyDict_GET_SIZE(delta) || has_removed || !known) {
            if (!(0 <= index && index < count)) {
                PyErr_SetString(PyExc_ValueError, "no such activation");
                goto done;
            }
            PyObject *mine = PyList_GET_ITEM(pieces, index);
            if (mine == Py_None) {
                mine = PyDict_New();
                if (mine == NULL) goto done;
                PyList_SetItem(pieces, index, mine);
            }
            Py_ssize_t pos = 0;
            PyObject *name, *text;
            while (PyDict_Next(delta, &pos, &name, &text)) {
                if (!PyUnicode_CheckExact(name) || !PyUnicode_CheckExact(text)) {
                    not_a("a local");
                    goto done;
                }
                PyObject *left = encode(name), *right = left ? encode(text) : NULL;
                PyObject *piece = right ? PyUnicode_FromFormat("%U: %U", left, right) : NULL;
                Py_XDECREF(left);
                Py_XDECREF(right);
                if (piece == NULL || PyDict_SetItem(mine, name, piece) < 0) {
                    Py_XDECREF(piece);
                    goto done;
                }
                Py_DECREF(piece);
            }
            if (has_removed) {
                for (Py_ssize_t r = 0; r < PyList_GET_SIZE(removed); r++) {
                    PyObject *name = PyList_GET_ITEM(removed, r);
                    if (!PyUnicode_CheckExact(name)) {
                        not_a("a local's name");
                        goto done;
                    }
                    if (discard(mine, name) < 0) goto done;
                }
            }
            PyObject *text_ = locals_text(mine);
            if (text_ == NULL) goto done;
            PyList_SetItem(texts, index, text_);
        }
        if (e && put_const(parts, ", ") < 0) goto done;
        PyObject *piece = PyUnicode_FromFormat("{\"event\": \"%U\", \"func\": %U, \"line\": %S, \"locals\": %U}", kind,
                                               PyList_GET_ITEM(funcs, index), line, PyList_GET_ITEM(texts, index));
        if (put(parts, piece) < 0) goto done;
    }
    if (put_const(parts, PyObject_IsTrue(field[4]) ? "], \"truncated\": true}" : "], \"truncated\": false}") < 0)
        goto done;
    PyObject *empty = PyUnicode_FromString("");
    if (empty != NULL) {
        result = PyUnicode_Join(empty, parts);
        Py_DECREF(empty);
    }
done:
    Py_XDECREF(funcs);
    Py_XDECREF(pieces);
    Py_XDECREF(texts);
    Py_XDECREF(parts);
    return result;
}


/* ------------------------------------------------------------------------------------------ json_line_raw */

/* json_line straight from a record's JSON text as the child's encoder writes it (ASCII, ", " and ": ", the keys in
   the child's order, every string escaped as json.dumps escapes it), without decoding it into Python objects first:
   every string is copied as it is, which is what decoding and encoding it again would give for such text. Text in
   any other form (another key order, other spacing, an escape json.dumps would not write) is not refused here: the
   caller decodes it and takes the Python path, which judges it. */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buffer;

static int grow(Buffer *b, Py_ssize_t more) {
    if (b->len + more <= b->cap) return 0;
    Py_ssize_t cap = Py_MAX(b->cap * 2, b->len + more + 256);
    char *data = PyMem_Realloc(b->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int append(Buffer *b, const char *text, Py_ssize_t n) {
    if (grow(b, n) < 0) return -1;
    memcpy(b->data + b->len, text, n);
    b->len += n;
    return 0;
}

#define APPEND_LITERAL(b, text) append((b), (text), (Py_ssize_t)sizeof(text) - 1)

typedef struct {
    const char *p, *end;
} Cursor;

static int literal(Cursor *c, const char *text, Py_ssize_t n) {
    if (c->end - c->p < n || memcmp(c->p, text, n) != 0) return 0;
    c->p += n;
    return 1;
}

#define LITERAL(c, text) literal((c), (text), (Py_ssize_t)sizeof(text) - 1)

static int hex_digit(char ch) { return ('0' <= ch && ch <= '9') ? ch - '0' : ('a' <= ch && ch <= 'f') ? ch - 'a' + 10 : -1; }

/* A string token exactly as encode_basestring_ascii writes one; its span, quotes included. */
static int string_token(Cursor *c, const char **start, Py_ssize_t *n) {
    const char *p = c->p;
    if (p >= c->end || *p != '"') return 0;
    for (p++; p < c->end; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"') {
            *start = c->p;
            *n = p + 1 - c->p;
            c->p = p + 1;
            return 1;
        }
        if (ch == '\\') {
            if (c->end - p < 2) return 0;
            char e = p[1];
            if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                p++;
                continue;
            }
            if (e != 'u' || c->end - p < 6) return 0;
            int v = 0;
            for (int i = 2; i < 6; i++) {
                int d = hex_digit(p[i]);
                if (d < 0) return 0;
                v = v * 16 + d;
            }
            /* only what has no shorter form: other control characters, DEL and beyond ASCII */
            if ((v >= 0x20 && v < 0x7f) || v == '\b' || v == '\f' || v == '\n' || v == '\r' || v == '\t') return 0;
            p += 5;
            continue;
        }
        if (ch < 0x20 || ch > 0x7e) return 0;
    }
    return 0;
}

static int null_or_string(Cursor *c, const char **start, Py_ssize_t *n) {
    if (LITERAL(c, "null")) {
        *start = NULL;
        *n = 0;
        return 1;
    }
    return string_token(c, start, n);
}

/* An int as int.__repr__ writes it, within long long; its span. */
static int int_token(Cursor *c, long long *value, const char **start, Py_ssize_t *n) {
    const char *p = c->p;
    int negative = p < c->end && *p == '-';
    if (negative) p++;
    const char *digits = p;
    long long v = 0;
    while (p < c->end && '0' <= *p && *p <= '9') {
        if (v > (LLONG_MAX - 9) / 10) return 0;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (p == digits || (p - digits > 1 && *digits == '0') || (negative && v == 0)) return 0;
    *value = negative ? -v : v;
    *start = c->p;
    *n = p - c->p;
    c->p = p;
    return 1;
}

typedef struct {
    int kind;
    const char *line;
    Py_ssize_t line_n;
    long long frame;
    const char *delta, *removed; /* spans inside the text, checked: `{...}` and `[...]` or NULL */
    Py_ssize_t delta_n, removed_n;
} RawEvent;

static const char *kind_texts[4] = {"call", "line", "return", "exception"};

/* `{"name": "repr", ...}`: calls `each(name span, pair span)` per entry when given. */
static int delta_object(Cursor *c, PyObject *mine) {
    if (!LITERAL(c, "{")) return 0;
    if (LITERAL(c, "}")) return 1;
    for (;;) {
        const char *name, *text;
        Py_ssize_t name_n, text_n;
        const char *pair = c->p;
        if (!string_token(c, &name, &name_n) || !LITERAL(c, ": ") || !string_token(c, &text, &text_n)) return 0;
        if (mine != NULL) {
            PyObject *key = PyUnicode_FromStringAndSize(name, name_n);
            PyObject *piece = key ? PyUnicode_FromStringAndSize(pair, c->p - pair) : NULL;
            int status = piece ? PyDict_SetItem(mine, key, piece) : -1;
            Py_XDECREF(key);
            Py_XDECREF(piece);
            if (status < 0) return -1;
        }
        if (LITERAL(c, "}")) return 1;
        if (!LITERAL(c, ", ")) return 0;
    }
}

static int removed_list(Cursor *c, PyObject *mine) {
    if (!LITERAL(c, "[")) return 0;
    if (LITERAL(c, "]")) return 1;
    for (;;) {
        const char *name;
        Py_ssize_t name_n;
        if (!string_token(c, &name, &name_n)) return 0;
        if (mine != NULL) {
            PyObject *key = PyUnicode_FromStringAndSize(name, name_n);
            if (key == NULL || discard(mine, key) < 0) {
                Py_XDECREF(key);
                return -1;
            }
            Py_DECREF(key);
        }
        if (LITERAL(c, "]")) return 1;
        if (!LITERAL(c, ", ")) return 0;
    }
}

static int one_event(Cursor *c, RawEvent *event) {
    const char *kind;
    Py_ssize_t kind_n;
    if (!LITERAL(c, "[") || !string_token(c, &kind, &kind_n)) return 0;
    event->kind = -1;
    for (int i = 0; i < 4; i++)
        if (kind_n == (Py_ssize_t)strlen(kind_texts[i]) + 2 && memcmp(kind + 1, kind_texts[i], kind_n - 2) == 0)
            event->kind = i;
    long long line;
    const char *frame_text;
    Py_ssize_t frame_n;
    if (event->kind < 0 || !LITERAL(c, ", ") || !int_token(c, &line, &event->line, &event->line_n) ||
        !LITERAL(c, ", "))
        return 0;
    event->delta = c->p;
    int status = delta_object(c, NULL);
    if (status <= 0) return status;
    event->delta_n = c->p - event->delta;
    if (!LITERAL(c, ", ") || !int_token(c, &event->frame, &frame_text, &frame_n)) return 0;
    event->removed = NULL;
    if (LITERAL(c, "]")) return 1;
    if (!LITERAL(c, ", ")) return 0;
    if (!LITERAL(c, "null")) {
        event->removed = c->p;
        status = removed_list(c, NULL);
        if (status <= 0) return status;
        event->removed_n = c->p - event->removed;
    }
    const char *value;
    Py_ssize_t value_n;
    return LITERAL(c, ", ") && null_or_string(c, &value, &value_n) && LITERAL(c, "]");
}

static PyObject *json_line_raw(PyObject *module, PyObject *text) {
    if (!PyUnicode_Check(text) || !PyUnicode_IS_ASCII(text)) { /* a RawJSON too */
        PyErr_SetString(PyExc_ValueError, "not a record in the child's form");
        return NULL;
    }
    Py_ssize_t size;
    const char *data = PyUnicode_AsUTF8AndSize(text, &size);
    if (data == NULL) return NULL;
    Cursor c = {data, data + size};
    RawEvent *events = NULL;
    Py_ssize_t count = 0, capacity = 0, frames = 0;
    const char *return_repr, *exception, *output;
    Py_ssize_t return_n, exception_n, output_n;
    PyObject *funcs = NULL, *pieces = NULL, *texts = NULL, *result = NULL;
    Buffer out = {NULL, 0, 0};
    int ok = LITERAL(&c, "{\"return_repr\": ") && null_or_string(&c, &return_repr, &return_n) &&
             LITERAL(&c, ", \"exception\": ") && null_or_string(&c, &exception, &exception_n) &&
             LITERAL(&c, ", \"events\": [");
    if (ok && !LITERAL(&c, "]")) {
        for (;;) {
            if (count == capacity) {
                capacity = capacity ? capacity * 2 : 64;
                RawEvent *more = PyMem_Realloc(events, capacity * sizeof(RawEvent));
                if (more == NULL) {
                    PyErr_NoMemory();
                    goto done;
                }
                events = more;
            }
            int status = one_event(&c, &events[count]);
            if (status < 0) goto done;
            if (!status) {
                ok = 0;
                break;
            }
            count++;
            if (LITERAL(&c, "]")) break;
            if (!LITERAL(&c, ", ")) {
                ok = 0;
                break;
            }
        }
    }
    funcs = PyList_New(0);
    if (funcs == NULL) goto done;
    ok = ok && LITERAL(&c, ", \"frames\": [");
    if (ok && !LITERAL(&c, "]")) {
        for (;;) {
            const char *func, *depth;
            Py_ssize_t func_n, depth_n;
            long long depth_value;
            if (!LITERAL(&c, "[") || !string_token(&c, &func, &func_n) || !LITERAL(&c, ", ") ||
                !int_token(&c, &depth_value, &depth, &depth_n) || !LITERAL(&c, "]")) {
                ok = 0;
                break;
            }
            PyObject *token = PyUnicode_FromStringAndSize(func, func_n);
            if (token == NULL || PyList_Append(funcs, token) < 0) {
                Py_XDECREF(token);
                goto done;
            }
            Py_DECREF(token);
            if (LITERAL(&c, "]")) break;
            if (!LITERAL(&c, ", ")) {
                ok = 0;
                break;
            }
        }
    }
    int truncated = 0;
    if (ok) {
        ok = LITERAL(&c, ", \"truncated\": ");
        if (ok && LITERAL(&c, "true")) truncated = 1;
        else if (!(ok && LITERAL(&c, "false"))) ok = 0;
        ok = ok && LITERAL(&c, ", \"output\": ") && string_token(&c, &output, &output_n) && LITERAL(&c, "}") &&
             c.p == c.end;
    }
    frames = PyList_GET_SIZE(funcs);
    for (Py_ssize_t i = 0; ok && i < count; i++)
        if (events[i].frame < 0 || events[i].frame >= frames) ok = 0; /* the Python path refuses it */
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "not a record in the child's form");
        goto done;
    }
    pieces = PyList_New(frames);
    texts = PyList_New(frames);
    if (pieces == NULL || texts == NULL) goto done;
    for (Py_ssize_t i = 0; i < frames; i++) {
        Py_INCREF(Py_None);
        PyList_SET_ITEM(pieces, i, Py_None);
        Py_INCREF(Py_None);
        PyList_SET_ITEM(texts, i, Py_None);
    }
    if (APPEND_LITERAL(&out, "{\"return_repr\": ") < 0 ||
        (return_repr ? append(&out, return_repr, return_n) : APPEND_LITERAL(&out, "null")) < 0 ||
        APPEND_LITERAL(&out, ", \"exception\": ") < 0 ||
        (exception ? append(&out, exception, exception_n) : APPEND_LITERAL(&out, "null")) < 0 ||
        APPEND_LITERAL(&out, ", \"events\": [") < 0)
        goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        RawEvent *event = &events[i];
        Py_ssize_t frame = (Py_ssize_t)event->frame;
        int has_delta = event->delta_n > 2, has_removed = event->removed != NULL && event->removed_n > 2;
        if (has_delta || has_removed || PyList_GET_ITEM(texts, frame) == Py_None) {
            PyObject *mine = PyList_GET_ITEM(pieces, frame);
            if (mine == Py_None) {
                mine = PyDict_New();
                if (mine == NULL) goto done;
                PyList_SetItem(pieces, frame, mine);
            }
            Cursor delta = {event->delta, event->delta + event->delta_n};
            if (delta_object(&delta, mine) < 0) goto done;
            if (has_removed) {
                Cursor removed = {event->removed, event->removed + event->removed_n};
                if (removed_list(&removed, mine) < 0) goto done;
            }
            PyObject *joined = locals_text(mine);
            if (joined == NULL) goto done;
            PyList_SetItem(texts, frame, joined);
        }
        Py_ssize_t func_n, text_n;
        const char *func = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(funcs, frame), &func_n);
        const char *locals = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(texts, frame), &text_n);
        const char *kind = kind_texts[event->kind];
        if (func == NULL || locals == NULL ||
            (i && APPEND_LITERAL(&out, ", ") < 0) || APPEND_LITERAL(&out, "{\"event\": \"") < 0 ||
            append(&out, kind, strlen(kind)) < 0 || APPEND_LITERAL(&out, "\", \"func\": ") < 0 ||
            append(&out, func, func_n) < 0 || APPEND_LITERAL(&out, ", \"line\": ") < 0 ||
            append(&out, event->line, event->line_n) < 0 || APPEND_LITERAL(&out, ", \"locals\": ") < 0 ||
            append(&out, locals, text_n) < 0 || APPEND_LITERAL(&out, "}") < 0)
            goto done;
    }
    if ((truncated ? APPEND_LITERAL(&out, "], \"truncated\": true}") : APPEND_LITERAL(&out, "], \"truncated\": false}")) < 0)
        goto done;
    result = PyUnicode_DecodeASCII(out.data, out.len, "strict");
done:
    PyMem_Free(events);
    PyMem_Free(out.data);
    Py_XDECREF(funcs);
    Py_XDECREF(pieces);
    Py_XDECREF(texts);
    return result;
}

/* --------------------------------------------------------------------------------------------- encode */

/* json.JSONEncoder(check_circular=False).encode(value) for what a row's result holds (dicts with str keys, lists,
   tuples, str, int, bool, None), byte for byte; TypeError for anything else (the caller then uses the json
   module). Strings are escaped as encode_basestring_ascii escapes them. */

static const char hexdigits[] = "0123456789abcdef";

static int put_string(Buffer *b, PyObject *text) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    if (grow(b, 12 * n + 2) < 0) return -1; /* a character takes at most 12 (a surrogate pair) */
    char *out = b->data + b->len;
    *out++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= ' ' && c <= '~' && c != '\\' && c != '"') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '\\': *out++ = '\\'; break;
        case '"': *out++ = '"'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        default:
            if (c >= 0x10000) {
                Py_UCS4 high = 0xd800 | ((c - 0x10000) >> 10);
                *out++ = 'u';
                *out++ = hexdigits[(high >> 12) & 0xf];
                *out++ = hexdigits[(high >> 8) & 0xf];
                *out++ = hexdigits[(high >> 4) & 0xf];
                *out++ = hexdigits[high & 0xf];
                c = 0xdc00 | ((c - 0x10000) & 0x3ff);
                *out++ = '\\';
            }
            *out++ = 'u';
            *out++ = hexdigits[(c >> 12) & 0xf];
            *out++ = hexdigits[(c >> 8) & 0xf];
            *out++ = hexdigits[(c >> 4) & 0xf];
            *out++ = hexdigits[c & 0xf];
        }
    }
    *out++ = '"';
    b->len = out - b->data;
    return 0;
}

static int put_value(Buffer *b, PyObject *value, int depth) {
    if (depth > 100) {
        PyErr_SetString(PyExc_TypeError, "nested too deep for encode_record");
        return -1;
    }
    if (PyUnicode_CheckExact(value)) return put_string(b, value);
    if (value == Py_None) return APPEND_LITERAL(b, "null");
    if (value == Py_True) return APPEND_LITERAL(b, "true");
    if (value == Py_False) return APPEND_LITERAL(b, "false");
    if (PyLong_CheckExact(value)) {
        PyObject *digits = PyLong_Type.tp_repr(value);
        if (digits == NULL) return -1;
        Py_ssize_t n;
        const char *text = PyUnicode_AsUTF8AndSize(digits, &n);
        int status = text ? append(b, text, n) : -1;
        Py_DECREF(digits);
        return status;
    }
    if (PyList_CheckExact(value) || PyTuple_CheckExact(value)) {
        if (APPEND_LITERAL(b, "[") < 0) return -1;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(value); i++) {
            if ((i && APPEND_LITERAL(b, ", ") < 0) || put_value(b, PySequence_Fast_GET_ITEM(value, i), depth + 1) < 0)
                return -1;
        }
        return APPEND_LITERAL(b, "]");
    }
    if (PyDict_CheckExact(value)) {
        if (APPEND_LITERAL(b, "{") < 0) return -1;
        Py_ssize_t pos = 0, i = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &pos, &key, &item)) {
            if (!PyUnicode_CheckExact(key)) {
                PyErr_SetString(PyExc_TypeError, "a key that is no str");
                return -1;
            }
            if ((i++ && APPEND_LITERAL(b, ", ") < 0) || put_string(b, key) < 0 || APPEND_LITERAL(b, ": ") < 0 ||
                put_value(b, item, depth + 1) < 0)
                return -1;
        }
        return APPEND_LITERAL(b, "}");
    }
    PyErr_Format(PyExc_TypeError, "encode_record cannot encode a %.100s", Py_TYPE(value)->tp_name);
    return -1;
}

static PyObject *encode_record(PyObject *module, PyObject *value) {
    Buffer out = {NULL, 0, 0};
    PyObject *result = put_value(&out, value, 0) < 0 ? NULL : PyUnicode_DecodeASCII(out.data, out.len, "strict");
    PyMem_Free(out.data);
    return result;
}

/* ---------------------------------------------------------------------------------------------- Tracer */

/* sandbox/_tracer_child.py's SettraceEngine as a C trace function (PyEval_SetTrace). A call event of the row's code
   is Recorder.enter, a line event of the recorder's top frame Recorder.add("line", ...), its return event (3.11,
   3.12) Recorder.leave with SettraceEngine's opcode test, all done here; its exception events (and 3.13's returns)
   go to the engine's Python on_event, exactly as sys.settrace would deliver them. Events of other frames are dropped
   here, which is what the Python engine's local trace functions amount to (only frames the recorder entered get
   one). Any error but the row's timeout is swallowed as the Python callbacks swallow it; the timeout stops tracing
   and propagates, as a Python trace function's exception does. */

typedef struct {
    PyObject_HEAD
    PyObject *filename, *recorder, *on_event, *timeout, *events, *stack, *slow, *same_items;
    PyObject *activations, *reprer, *normal_exits, *py_diff, *cap_object;
    Py_ssize_t cap, max_events, max_bytes, max_depth;
    int values;
} Tracer;

static PyObject *s_truncated, *s_bytes, *s_halt, *s_events, *s_stack, *s_slow, *s_max_events,
    *s_max_bytes, *s_cap, *s_reprer, *s_activations, *s_max_depth, *s_values, *s_returned;
static PyObject *event_names[8]; /* by PyTrace_* what */

static void tracer_dealloc(Tracer *self) {
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->filename);
    Py_CLEAR(self->recorder);
    Py_CLEAR(self->on_event);
    Py_CLEAR(self->timeout);
    Py_CLEAR(self->events);
    Py_CLEAR(self->stack);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->same_items);
    Py_CLEAR(self->activations);
    Py_CLEAR(self->reprer);
    Py_CLEAR(self->normal_exits);
    Py_CLEAR(self->py_diff);
    Py_CLEAR(self->cap_object);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int tracer_traverse(Tracer *self, visitproc visit, void *arg) {
    Py_VISIT(self->filename);
    Py_VISIT(self->recorder);
    Py_VISIT(self->on_event);
    Py_VISIT(self->timeout);
    Py_VISIT(self->events);
    Py_VISIT(self->stack);
    Py_VISIT(self->slow);
    Py_VISIT(self->same_items);
    Py_VISIT(self->activations);
    Py_VISIT(self->reprer);
    Py_VISIT(self->normal_exits);
    Py_VISIT(self->py_diff);
    Py_VISIT(self->cap_object);
    return 0;
}

static Py_ssize_t int_attr(PyObject *object, PyObject *name) {
    PyObject *value = PyObject_GetAttr(object, name);
    if (value == NULL) return -1;
    Py_ssize_t result = PyLong_AsSsize_t(value);
    Py_DECREF(value);
    return result;
}

static int tracer_init(Tracer *self, PyObject *args, PyObject *kwds) {
    PyObject *filename, *recorder, *on_event, *timeout, *same_items, *normal_exits, *py_diff;
    if (!PyArg_ParseTuple(args, "UOOOOO!O:Tracer", &filename, &recorder, &on_event, &timeout, &same_items,
                          &PyFrozenSet_Type, &normal_exits, &py_diff))
        return -1;
    PyObject *values[6];
    PyObject *names[6] = {s_events, s_stack, s_slow, s_activations, s_reprer, s_cap};
    for (int i = 0; i < 6; i++) {
        values[i] = PyObject_GetAttr(recorder, names[i]);
        if (values[i] == NULL) {
            for (int j = 0; j < i; j++) Py_DECREF(values[j]);
            return -1;
        }
    }
    if (!PyList_CheckExact(values[0]) || !PyList_CheckExact(values[1]) || !PyList_CheckExact(values[3])) {
        for (int j = 0; j < 6; j++) Py_DECREF(values[j]);
        PyErr_SetString(PyExc_TypeError, "the recorder's events, stack and activations must be lists");
        return -1;
    }
    Py_XSETREF(self->events, values[0]);
    Py_XSETREF(self->stack, values[1]);
    Py_XSETREF(self->slow, values[2]);
    Py_XSETREF(self->activations, values[3]);
    Py_XSETREF(self->reprer, values[4]);
    Py_XSETREF(self->cap_object, values[5]);
    PyObject *owned[] = {filename, recorder, on_event, timeout, same_items, normal_exits, py_diff};
    PyObject **slots[] = {&self->filename, &self->recorder, &self->on_event, &self->timeout, &self->same_items,
                          &self->normal_exits, &self->py_diff};
    for (int i = 0; i < 7; i++) {
        Py_INCREF(owned[i]);
        Py_XSETREF(*slots[i], owned[i]);
    }
    self->max_events = int_attr(recorder, s_max_events);
    self->max_bytes = int_attr(recorder, s_max_bytes);
    self->max_depth = int_attr(recorder, s_max_depth);
    self->cap = PyLong_AsSsize_t(self->cap_object);
    PyObject *wants = PyObject_GetAttr(recorder, s_values);
    self->values = wants ? PyObject_IsTrue(wants) : -1;
    Py_XDECREF(wants);
    return PyErr_Occurred() ? -1 : 0;
}

/* Recorder.add(kind, frame, lineno, value) and Recorder._append for the top frame's entry `top`; -1 on error. */
static int add_event(Tracer *self, PyFrameObject *frame, PyObject *top, int what, PyObject *value) {
    PyObject *truncated = PyObject_GetAttr(self->recorder, s_truncated);
    if (truncated == NULL) return -1;
    int done = PyObject_IsTrue(truncated);
    Py_DECREF(truncated);
    if (done) return done < 0 ? -1 : 0;
    PyObject **entry = PySequence_Fast_ITEMS(top);
    PyObject *delta = NULL, *removed = NULL;
    int fresh = entry[6] == Py_True;
    if (fresh) {
        Py_INCREF(Py_False);
        PyList_SetItem(top, 6, Py_False);
    }
    if (fresh && what == PyTrace_LINE) { /* nothing ran since the call event: the locals are the arguments */
        delta = PyDict_New();
        removed = Py_None;
        Py_INCREF(removed);
        if (delta == NULL) return -1;
    } else {
        PyObject *names = PyFrame_GetLocals(frame);
        if (names == NULL) return -1;
        if (!PyDict_CheckExact(names) || !PyDict_CheckExact(entry[3]) || !PyDict_CheckExact(entry[5])) {
            /* a locals proxy (3.13): Python's diff_locals, then this _append */
            PyObject *size = entry[4];
            PyObject *result = PyObject_CallFunctionObjArgs(self->py_diff, names, entry[3], entry[5], size,
                                                            self->cap_object, self->slow, self->same_items, NULL);
            Py_DECREF(names);
            if (result == NULL) return -1;
            if (!PyTuple_CheckExact(result) || PyTuple_GET_SIZE(result) != 3) {
                Py_DECREF(result);
                PyErr_SetString(PyExc_TypeError, "diff_locals must return (delta, removed, size)");
                return -1;
            }
            delta = PyTuple_GET_ITEM(result, 0);
            removed = PyTuple_GET_ITEM(result, 1);
            Py_INCREF(delta);
            Py_INCREF(removed);
            Py_INCREF(PyTuple_GET_ITEM(result, 2));
            PyList_SetItem(top, 4, PyTuple_GET_ITEM(result, 2));
            Py_DECREF(result);
        } else {
            Py_ssize_t size = PyLong_AsSsize_t(entry[4]);
            int status = size == -1 && PyErr_Occurred() ? -1 :
                diff(names, entry[3], entry[5], &size, self->cap, self->slow, self->same_items, &delta, &removed);
            Py_DECREF(names);
            if (status < 0) return -1;
            PyObject *new_size = PyLong_FromSsize_t(size);
            if (new_size == NULL || PyList_SetItem(top, 4, new_size) < 0) goto fail;
        }
    }
    /* Recorder._append */
    Py_ssize_t bytes = int_attr(self->recorder, s_bytes), snapshot = PyLong_AsSsize_t(entry[4]);
    if (PyErr_Occurred()) goto fail;
    bytes += snapshot + 40; /* _EVENT_OVERHEAD */
    if (value != Py_None) {
        Py_ssize_t length = PyObject_Length(value);
        if (length < 0) goto fail;
        bytes += length;
    }
    PyObject *total = PyLong_FromSsize_t(bytes);
    if (total == NULL) goto fail;
    int set = PyObject_SetAttr(self->recorder, s_bytes, total);
    Py_DECREF(total);
    if (set < 0) goto fail;
    if (PyList_GET_SIZE(self->events) >= self->max_events || bytes > self->max_bytes) {
        Py_DECREF(delta);
        Py_DECREF(removed);
        if (PyObject_SetAttr(self->recorder, s_truncated, Py_True) < 0) return -1;
        PyObject *halted = PyObject_CallMethodNoArgs(self->recorder, s_halt);
        Py_XDECREF(halted);
        return halted ? 0 : -1;
    }
    PyObject *line = PyLong_FromLong(PyFrame_GetLineNumber(frame)), *event;
    if (line == NULL) goto fail;
    if (removed == Py_None && value == Py_None)
        event = PyTuple_Pack(4, event_names[what], line, delta, entry[1]);
    else
        event = PyTuple_Pack(6, event_names[what], line, delta, entry[1], removed, value);
    Py_DECREF(line);
    Py_DECREF(delta);
    Py_DECREF(removed);
    if (event == NULL) return -1;
    int appended = PyList_Append(self->events, event);
    Py_DECREF(event);
    return appended;
fail:
    Py_XDECREF(delta);
    Py_XDECREF(removed);
    return -1;
}

/* Recorder.enter(frame): a traced frame starts or resumes (not traced when too deep or after the caps). */
static int enter_frame(Tracer *self, PyFrameObject *frame) {
    Py_ssize_t depth = PyList_GET_SIZE(self->stack) + 1;
    PyObject *truncated = PyObject_GetAttr(self->recorder, s_truncated);
    if (truncated == NULL) return -1;
    int done = PyObject_IsTrue(truncated);
    Py_DECREF(truncated);
    if (done < 0) return -1;
    if (depth > self->max_depth || done) return 0;
    PyCodeObject *code = PyFrame_GetCode(frame);
    PyObject *activation = Py_BuildValue("(On)", code->co_qualname, depth);
    Py_DECREF(code);
    if (activation == NULL) return -1;
    PyObject *top = Py_BuildValue("[NnnNnNO]", PyLong_FromVoidPtr(frame), PyList_GET_SIZE(self->activations), depth,
                                  PyDict_New(), (Py_ssize_t)0, PyDict_New(), Py_False);
    int status = top == NULL || PyList_Append(self->stack, top) < 0 || PyList_Append(self->activations, activation) < 0
                 ? -1 : add_event(self, frame, top, PyTrace_CALL, Py_None);
    if (status == 0) {
        Py_INCREF(Py_True);
        PyList_SetItem(top, 6, Py_True);
    }
    Py_XDECREF(top);
    Py_DECREF(activation);
    return status;
}

/* Recorder.leave(frame, value, by_exception) for the top frame's entry `top`, by_exception told from the opcode the
   frame stopped at as SettraceEngine tells it (3.11 and 3.12; 3.13's yields need the Python form). */
static int leave_frame(Tracer *self, PyFrameObject *frame, PyObject *top, PyObject *value) {
    PyCodeObject *code = PyFrame_GetCode(frame);
    PyObject *opcodes = PyCode_GetCode(code);
    int lasti = PyFrame_GetLasti(frame), by_exception = 1;
    if (opcodes == NULL) {
        Py_DECREF(code);
        return -1;
    }
    if (0 <= lasti && lasti < PyBytes_GET_SIZE(opcodes)) {
        PyObject *op = PyLong_FromLong((unsigned char)PyBytes_AS_STRING(opcodes)[lasti]);
        int normal = op ? PySet_Contains(self->normal_exits, op) : -1;
        Py_XDECREF(op);
        if (normal < 0) {
            Py_DECREF(opcodes);
            Py_DECREF(code);
            return -1;
        }
        by_exception = !normal;
    }
    Py_DECREF(opcodes);
    Py_ssize_t depth = PyLong_AsSsize_t(PyList_GET_ITEM(top, 2));
    PyObject *text = Py_None;
    Py_INCREF(text);
    if (!(by_exception || (depth > 1 && !self->values))) {
        Py_DECREF(text);
        text = PyObject_CallOneArg(self->reprer, by_exception ? Py_None : value);
        if (text == NULL) {
            Py_DECREF(code);
            return -1;
        }
    }
    int status = add_event(self, frame, top, PyTrace_RETURN, text);
    if (status == 0) status = PyList_SetSlice(self->stack, PyList_GET_SIZE(self->stack) - 1,
                                               PyList_GET_SIZE(self->stack), NULL);
    if (status == 0 && depth == 1) {
        PyObject *returned = PyTuple_Pack(3, value, text, code->co_name);
        status = returned ? PyObject_SetAttr(self->recorder, s_returned, returned) : -1;
        Py_XDECREF(returned);
    }
    Py_DECREF(text);
    Py_DECREF(code);
    return status;
}

static int trace(PyObject *object, PyFrameObject *frame, int what, PyObject *arg) {
    Tracer *self = (Tracer *)object;
    if (arg == NULL) arg = Py_None; /* a return by an exception (a Python trace function gets None there too) */
    int status = 0;
    if (what == PyTrace_CALL) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        PyObject *filename = code->co_filename;
        int mine = filename == self->filename ||
                   (PyUnicode_CheckExact(filename) && PyUnicode_Compare(filename, self->filename) == 0);
        Py_DECREF(code);
        if (!mine) return 0;
        status = enter_frame(self, frame);
    } else if (what == PyTrace_LINE || what == PyTrace_RETURN || what == PyTrace_EXCEPTION) {
        Py_ssize_t depth = PyList_GET_SIZE(self->stack);
        if (depth == 0) return 0;
        PyObject *top = PyList_GET_ITEM(self->stack, depth - 1);
        if (!PyList_CheckExact(top) || PyList_GET_SIZE(top) != 7 || PyLong_AsVoidPtr(PyList_GET_ITEM(top, 0)) != frame) {
            if (PyErr_Occurred()) PyErr_Clear();
            return 0;
        }
        Py_INCREF(top);
        if (what == PyTrace_LINE) {
            status = add_event(self, frame, top, PyTrace_LINE, Py_None);
        } else if (what == PyTrace_RETURN && PY_VERSION_HEX < 0x030D0000) {
            status = leave_frame(self, frame, top, arg);
        } else {
            PyObject *result = PyObject_CallFunctionObjArgs(self->on_event, frame, event_names[what], arg, NULL);
            Py_XDECREF(result);
            status = result ? 0 : -1;
        }
        Py_DECREF(top);
    }
    if (status < 0) {
        if (!PyErr_ExceptionMatches(self->timeout)) {
            PyErr_Clear(); /* a tracer failure must never change the program's result */
            return 0;
        }
        PyEval_SetTrace(NULL, NULL); /* as a Python trace function that raises */
        return -1;
    }
    return 0;
}

static PyObject *tracer_start(Tracer *self, PyObject *unused) {
    PyEval_SetTrace(trace, (PyObject *)self);
    Py_RETURN_NONE;
}

static PyMethodDef tracer_methods[] = {
    {"start", (PyCFunction)tracer_start, METH_NOARGS, "Trace this thread from now on (sys.settrace(None) stops)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TracerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_semcoder_speedups.Tracer",
    .tp_basicsize = sizeof(Tracer),
    .tp_dealloc = (destructor)tracer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Tracer(filename, recorder, on_event, timeout_type, same_items, normal_exits, diff_locals): "
              "SettraceEngine in C",
    .tp_traverse = (traverseproc)tracer_traverse,
    .tp_methods = tracer_methods,
    .tp_init = (initproc)tracer_init,
    .tp_new = PyType_GenericNew,
};

static PyMethodDef methods[] = {
    {"diff_locals", (PyCFunction)(void (*)(void))diff_locals, METH_FASTCALL,
     "diff_locals(names, current, shadows, size, cap, slow, same_items) -> (delta, removed, size)"},
    {"json_line", json_line, METH_O, "json_line(record) -> str: a row's trace JSON line from its compact record"},
    {"encode_record", encode_record, METH_O,
     "encode_record(value) -> str: json.JSONEncoder(check_circular=False).encode(value) for a row's result"},
    {"json_line_raw", json_line_raw, METH_O,
     "json_line_raw(text) -> str: json_line(json.loads(text)) for a record in the child's form; ValueError otherwise"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups = {PyModuleDef_HEAD_INIT, "_semcoder_speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__semcoder_speedups(void) {
    PyObject *json = PyImport_ImportModule("_json");
    if (json == NULL) return NULL;
    encode_ascii = PyObject_GetAttrString(json, "encode_basestring_ascii");
    Py_DECREF(json);
    if (encode_ascii == NULL) return NULL;
    const char *kinds[] = {"call", "line", "return", "exception"};
    for (int i = 0; i < 4; i++)
        if ((kind_names[i] = PyUnicode_InternFromString(kinds[i])) == NULL) return NULL;
    const char *names[] = {"truncated", "_bytes", "halt", "events", "stack", "_slow", "_max_events",
                           "_max_bytes", "_cap", "_reprer", "activations", "_max_depth", "_values", "returned"};
    PyObject **targets[] = {&s_truncated, &s_bytes, &s_halt, &s_events, &s_stack, &s_slow, &s_max_events,
                            &s_max_bytes, &s_cap, &s_reprer, &s_activations, &s_max_depth, &s_values, &s_returned};
    for (int i = 0; i < 14; i++)
        if ((*targets[i] = PyUnicode_InternFromString(names[i])) == NULL) return NULL;
    const char *whats[] = {"call", "exception", "line", "return", "c_call", "c_exception", "c_return", "opcode"};
    for (int i = 0; i < 8; i++) /* PyTrace_CALL .. PyTrace_OPCODE are 0 .. 7 */
        if ((event_names[i] = PyUnicode_InternFromString(whats[i])) == NULL) return NULL;
    if (PyType_Ready(&TracerType) < 0) return NULL;
    PyObject *module = PyModule_Create(&speedups);
    if (module == NULL) return NULL;
    Py_INCREF(&TracerType);
    if (PyModule_AddObject(module, "Tracer", (PyObject *)&TracerType) < 0) {
        Py_DECREF(&TracerType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
