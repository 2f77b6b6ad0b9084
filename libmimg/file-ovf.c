/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The OVF descriptor of an OVA: which disks the appliance has and which
 * archive member holds each.  The XML is hostile input: documents with a
 * DTD are refused before parsing (no entities, internal or external), the
 * parser never touches the network, and sizes and counts are bounded.
 * Elements and attributes are matched by local name, so OVF 1.x and 2.x
 * namespaces both work.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dynlib.h"
#include "error.h"
#include "file-archive.h"

void mimg__ovf_free(struct mimg_ovf *ovf)
{
	if (!ovf)
		return;
	for (int i = 0; i < ovf->ndisks; i++) {
		free(ovf->disks[i].id);
		free(ovf->disks[i].href);
		free(ovf->disks[i].format);
	}
	free(ovf->disks);
	free(ovf->system_id);
	free(ovf->system_name);
	free(ovf);
}

#ifdef MIMG_HAVE_LIBXML2
static bool is_element(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE &&
	       strcmp((const char *)n->name, name) == 0;
}

static const xmlNode *child(const xmlNode *n, const char *name)
{
	for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
		if (is_element(c, name))
			return c;
	return NULL;
}

/* The value of attribute NAME in any namespace, or NULL. */
static const char *attr(const xmlNode *n, const char *name)
{
	for (const xmlAttr *a = n->properties; a; a = a->next)
		if (strcmp((const char *)a->name, name) == 0 && a->children &&
		    a->children->type == XML_TEXT_NODE && !a->children->next)
			return (const char *)a->children->content;
	return NULL;
}

/* capacity * allocation units ("byte", "byte * 2^30"): false when the
 * units are anything else or it overflows. */
static bool parse_capacity(const char *cap, const char *units, uint64_t *bytes)
{
	char *end;
	unsigned shift = 0;
	if (!cap || !*cap || *cap == '-')
		return false;
	errno = 0;
	unsigned long long v = strtoull(cap, &end, 10);
	if (errno || *end)
		return false;
	if (units && strcmp(units, "byte") != 0) {
		unsigned long s;
		if (strncmp(units, "byte * 2^", 9) != 0)
			return false;
		s = strtoul(units + 9, &end, 10);
		if (*end || s > 63)
			return false;
		shift = (unsigned)s;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return false;
	*bytes = (uint64_t)v << shift;
	return true;
}

static int add_disk(struct mimg_ovf *ovf, const xmlNode *refs, const xmlNode *d,
		    const char *name)
{
	const char *id = attr(d, "diskId"), *ref = attr(d, "fileRef");
	const char *href = NULL;
	struct mimg_ovf_disk *disk;

	if (ovf->ndisks >= MIMG_OVF_MAX_DISKS)
		return mimg_err(-E2BIG, "%s: OVF has more than %d disks", name,
				MIMG_OVF_MAX_DISKS);
	if (!id || !ref)
		return mimg_err(-EINVAL,
				"%s: OVF Disk %d lacks diskId or "
				"fileRef",
				name, ovf->ndisks + 1);
	for (const xmlNode *f = refs ? refs->children : NULL; f; f = f->next)
		if (is_element(f, "File") && attr(f, "id") &&
		    strcmp(attr(f, "id"), ref) == 0)
			href = attr(f, "href");
	if (!href)
		return mimg_err(-EINVAL,
				"%s: OVF disk '%.64s' refers to file "
				"'%.64s', which References does not list",
				name, id, ref);
	disk = &ovf->disks[ovf->ndisks];
	memset(disk, 0, sizeof(*disk));
	disk->known_capacity = parse_capacity(attr(d, "capacity"),
					      attr(d,
						   "capacityAllocationUnits"),
					      &disk->capacity);
	disk->known_populated = parse_capacity(attr(d, "populatedSize"), NULL,
					       &disk->populated);
	ovf->ndisks++;
	if (!(disk->id = strdup(id)) || !(disk->href = strdup(href)) ||
	    (attr(d, "format") && !(disk->format = strdup(attr(d, "format")))))
		return mimg_err(-ENOMEM, "out of memory");
	return 0;
}

/* The text of element N when it is a single text node, else NULL. */
static const char *text_of(const xmlNode *n)
{
	if (!n || !n->children || n->children->next ||
	    n->children->type != XML_TEXT_NODE)
		return NULL;
	return (const char *)n->children->content;
}

/* CPUs (ResourceType 3) and memory (4) of a VirtualHardwareSection. */
static void read_hardware(const xmlNode *hw, struct mimg_ovf *ovf)
{
	for (const xmlNode *it = hw ? hw->children : NULL; it; it = it->next) {
		const char *type = text_of(child(it, "ResourceType"));
		const char *qty = text_of(child(it, "VirtualQuantity"));
		const char *units = text_of(child(it, "AllocationUnits"));
		uint64_t v;
		if (!is_element(it, "Item") || !type || !qty)
			continue;
		if (strcmp(type, "3") == 0 && parse_capacity(qty, NULL, &v))
			ovf->cpus = v;
		/* Memory is in "byte * 2^20" (the spec's form) or, as older
		 * exports write it, "MegaBytes". */
		if (strcmp(type, "4") == 0 && units &&
		    strcmp(units, "MegaBytes") == 0)
			units = "byte * 2^20";
		if (strcmp(type, "4") == 0 &&
		    parse_capacity(qty, units ? units : "byte * 2^20", &v))
			ovf->memory = v;
	}
}

static int read_system(const xmlNode *env, struct mimg_ovf *ovf)
{
	const xmlNode *vs = child(env, "VirtualSystem");
	if (!vs)
		vs = child(child(env, "VirtualSystemCollection"),
			   "VirtualSystem");
	if (!vs)
		return 0;
	const char *id = attr(vs, "id"), *name = text_of(child(vs, "Name"));
	if ((id && !(ovf->system_id = strndup(id, 256))) ||
	    (name && !(ovf->system_name = strndup(name, 256))))
		return mimg_err(-ENOMEM, "out of memory");
	read_hardware(child(vs, "VirtualHardwareSection"), ovf);
	return 0;
}

static int read_envelope(const xmlNode *env, const char *name,
			 struct mimg_ovf *ovf)
{
	const xmlNode *refs = child(env, "References");
	const xmlNode *disks = child(env, "DiskSection");
	int r;

	if (!disks)
		return mimg_err(-EINVAL, "%s: OVF has no DiskSection", name);
	if (!(ovf->disks = calloc(MIMG_OVF_MAX_DISKS, sizeof(*ovf->disks))))
		return mimg_err(-ENOMEM, "out of memory");
	for (const xmlNode *d = disks->children; d; d = d->next)
		if (is_element(d, "Disk") &&
		    (r = add_disk(ovf, refs, d, name)) < 0)
			return r;
	if (ovf->ndisks == 0)
		return mimg_err(-EINVAL, "%s: OVF lists no disk", name);
	return read_system(env, ovf);
}

int mimg__ovf_parse(const uint8_t *xml, size_t len, const char *name,
		    struct mimg_ovf **ovfp)
{
	struct mimg_ovf *ovf;
	xmlDoc *doc;
	int r;

	*ovfp = NULL;
	if (len > MIMG_OVF_MAX_SIZE)
		return mimg_err(-EFBIG,
				"%s: OVF descriptor of %zu bytes is "
				"larger than %d",
				name, len, MIMG_OVF_MAX_SIZE);
	/* UTF-8 only (forced below), so that the DTD test sees the text as
	 * the parser will: other encodings have NUL bytes or no '<' first. */
	size_t i = len >= 3 && memcmp(xml, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
	while (i < len && strchr(" \t\r\n", xml[i]) && xml[i])
		i++;
	if (i == len || xml[i] != '<' || memchr(xml, 0, len))
		return mimg_err(-EINVAL, "%s: OVF descriptor is not UTF-8 XML",
				name);
	if (memmem(xml, len, "<!DOCTYPE", 9) || memmem(xml, len, "<!ENTITY", 8))
		return mimg_err(-EPERM,
				"%s: OVF descriptor has a DTD or "
				"entities; refused",
				name);
	if ((r = mimg__xml_lib_load(name)) < 0)
		return r;
	doc = mimg__libxml2.xmlReadMemory((const char *)xml, (int)len, NULL,
					  "UTF-8",
					  XML_PARSE_NONET | XML_PARSE_NOERROR |
						  XML_PARSE_NOWARNING);
	if (!doc)
		return mimg_err(-EINVAL,
				"%s: OVF descriptor is not "
				"well-formed XML",
				name);
	const xmlNode *root = mimg__libxml2.xmlDocGetRootElement(doc);
	if (doc->intSubset || doc->extSubset || !root ||
	    !is_element(root, "Envelope")) {
		mimg__libxml2.xmlFreeDoc(doc);
		return mimg_err(-EINVAL,
				"%s: OVF descriptor has no Envelope "
				"(or has a DTD)",
				name);
	}
	if (!(ovf = calloc(1, sizeof(*ovf)))) {
		mimg__libxml2.xmlFreeDoc(doc);
		return mimg_err(-ENOMEM, "out of memory");
	}
	r = read_envelope(root, name, ovf);
	mimg__libxml2.xmlFreeDoc(doc);
	if (r < 0) {
		mimg__ovf_free(ovf);
		return r;
	}
	*ovfp = ovf;
	return 0;
}
#else
int mimg__ovf_parse(const uint8_t *xml, size_t len, const char *name,
		    struct mimg_ovf **ovfp)
{
	(void)xml;
	(void)len;
	(void)name;
	*ovfp = NULL;
	return -ENOTSUP;
}
#endif
