/*
 * xml.c - XML workload: libxml2 parses and walks large documents while
 * allocating every node, string and dictionary from the garbage collector
 * (xmlGcMemSetup), so the parser's own data structures are the GC heap.
 *
 *   xml [-s DOCS] [-e ITEMS_PER_DOC] [-k KEEP]
 *
 * The suite generates each document itself, deterministically (document i is
 * a catalogue of ITEMS_PER_DOC items whose names, attributes, prices, tags
 * and descriptions, entities included, come from a PRNG seeded with i).
 * Every document is parsed from memory, walked in full (element names,
 * attributes, text) and kept alive until KEEP newer documents have been
 * parsed; older ones are freed with xmlFreeDoc (GC_free underneath).
 */
#include "workload.h"

#include <gc.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlmemory.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable text buffer in the GC heap (pointer-free). */
struct buf {
    char *p;
    size_t len, cap;
};

static void buf_printf(struct buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n + 1;
        b->p = GC_REALLOC(b->p, b->cap);
        if (!b->p) {
            fputs("xml: out of memory\n", stderr);
            exit(1);
        }
    }
}

static const char *const words[] = {
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
};
enum { NWORDS = sizeof words / sizeof words[0] };

static const char *word(uint64_t *rng)
{
    return words[wl_rand(rng) % NWORDS];
}

static void gen_item(struct buf *b, long id, uint64_t *rng)
{
    int ntags = 1 + (int)(wl_rand(rng) % 5);
    int nwords = 4 + (int)(wl_rand(rng) % 24);

    buf_printf(b, "<item id=\"i%ld\" category=\"%s\" price=\"%llu.%02u\">\n", id, word(rng),
               (unsigned long long)(wl_rand(rng) % 1000), (unsigned)(wl_rand(rng) % 100));
    buf_printf(b, "  <name>%s %s</name>\n  <tags>", word(rng), word(rng));
    for (int t = 0; t < ntags; t++)
        buf_printf(b, "<tag weight=\"%u\">%s</tag>", (unsigned)(wl_rand(rng) % 10), word(rng));
    buf_printf(b, "</tags>\n  <desc>");
    for (int w = 0; w < nwords; w++)
        buf_printf(b, w % 7 == 6 ? "%s &amp; " : "%s ", word(rng));
    buf_printf(b, "</desc>\n</item>\n");
}

static struct buf generate(long doc, long items)
{
    struct buf b = { GC_MALLOC_ATOMIC(1 << 16), 0, 1 << 16 };
    uint64_t rng = 0x1234567ull + (uint64_t)doc;

    if (!b.p) {
        fputs("xml: out of memory\n", stderr);
        exit(1);
    }
    buf_printf(&b, "<?xml version=\"1.0\"?>\n<catalog doc=\"%ld\">\n", doc);
    for (long i = 0; i < items; i++)
        gen_item(&b, i, &rng);
    buf_printf(&b, "</catalog>\n");
    return b;
}

static uint64_t hash_str(const xmlChar *s)
{
    return s ? wl_hash_bytes(s, strlen((const char *)s)) : 0;
}

static uint64_t walk(const xmlNode *n)
{
    uint64_t sum = 0;

    for (; n; n = n->next) {
        sum = wl_mix(sum, (uint64_t)n->type);
        if (n->type == XML_ELEMENT_NODE) {
            sum = wl_mix(sum, hash_str(n->name));
            for (const xmlAttr *a = n->properties; a; a = a->next)
                sum = wl_mix(wl_mix(sum, hash_str(a->name)), walk(a->children));
        } else if (n->type == XML_TEXT_NODE) {
            sum = wl_mix(sum, hash_str(n->content));
        }
        sum = wl_mix(sum, walk(n->children));
    }
    return sum;
}

/* libxml2's hook types take plain functions; bdwgc's entry points fit as is. */
static void use_gc_for_libxml(void)
{
    if (xmlGcMemSetup(GC_free, GC_malloc, GC_malloc_atomic, GC_realloc, GC_strdup)) {
        fputs("xml: xmlGcMemSetup failed\n", stderr);
        exit(1);
    }
    xmlInitParser();
}

int main(int argc, char **argv)
{
    long docs = wl_arg(argc, argv, "-s", 16);
    long items = wl_arg(argc, argv, "-e", 20000);
    long keep = wl_arg(argc, argv, "-k", 2);
    xmlDoc **live;
    uint64_t sum = 0;

    wl_start("xml", docs);
    use_gc_for_libxml();
    live = GC_MALLOC((size_t)keep * sizeof *live);
    for (long d = 0; d < docs; d++) {
        struct buf text = generate(d, items);
        xmlDoc *doc = xmlReadMemory(text.p, (int)text.len, "gen.xml", NULL, XML_PARSE_NONET);

        if (!doc) {
            fprintf(stderr, "xml: document %ld did not parse\n", d);
            return 1;
        }
        sum = wl_mix(sum, walk(xmlDocGetRootElement(doc)));
        if (live[d % keep])
            xmlFreeDoc(live[d % keep]);
        live[d % keep] = doc;
    }
    /* The kept documents must still be intact after all that collection. */
    for (long k = 0; k < keep; k++)
        if (live[k])
            sum = wl_mix(sum, walk(xmlDocGetRootElement(live[k])));
    return wl_finish(sum);
}
