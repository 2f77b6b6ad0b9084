/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Human-readable output in qemu-img's layout.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

void cli_format_size(char *buf, size_t len, uint64_t bytes)
{
	static const char *const suffixes[] = {"",   "Ki", "Mi", "Gi",
					       "Ti", "Pi", "Ei"};
	int e;
	/* floor(log2(bytes * 1024 / 1000)) / 10 picks the unit so that the
	 * number shown is below 1000. */
	frexp((double)bytes / (1000.0 / 1024.0), &e);
	int i = (e - 1) / 10;
	if (i < 0)
		i = 0;
	if (i > 6)
		i = 6;
	double div = (double)(1ull << (i * 10));
	snprintf(buf, len, "%0.3g %sB", (double)bytes / div, suffixes[i]);
}

static void print_key(FILE *out, const char *key, int indent)
{
	fprintf(out, "%*s", indent * 4, "");
	for (const char *k = key; *k; k++)
		fputc(*k == '-' ? ' ' : *k, out);
}

static void print_scalar(FILE *out, const struct mimg_value *v)
{
	switch (v->type) {
	case MIMG_VALUE_NULL: fputs("null", out); break;
	case MIMG_VALUE_BOOL: fputs(v->v.b ? "true" : "false", out); break;
	case MIMG_VALUE_INT: fprintf(out, "%" PRId64, v->v.i); break;
	case MIMG_VALUE_UINT: fprintf(out, "%" PRIu64, v->v.u); break;
	case MIMG_VALUE_STRING: fputs(v->v.s, out); break;
	default: break;
	}
}

static bool is_container(const struct mimg_value *v)
{
	return v->type == MIMG_VALUE_OBJECT || v->type == MIMG_VALUE_ARRAY;
}

void cli_dump_value(FILE *out, const struct mimg_value *v, int indent)
{
	for (size_t i = 0; i < v->v.list.n; i++) {
		const struct mimg_value *it = &v->v.list.items[i];
		if (v->type == MIMG_VALUE_ARRAY)
			fprintf(out, "%*s[%zu]:", indent * 4, "", i);
		else
			print_key(out, it->key ? it->key : "", indent);
		if (is_container(it)) {
			if (v->type != MIMG_VALUE_ARRAY)
				fputc(':', out);
			fputc('\n', out);
			cli_dump_value(out, it, indent + 1);
		} else {
			fputs(v->type == MIMG_VALUE_ARRAY ? " " : ": ", out);
			print_scalar(out, it);
			fputc('\n', out);
		}
	}
}

static uint64_t get_u64(const struct mimg_value *obj, const char *key)
{
	const struct mimg_value *v = mimg_value_get(obj, key);
	if (!v)
		return 0;
	if (v->type == MIMG_VALUE_UINT)
		return v->v.u;
	if (v->type == MIMG_VALUE_INT)
		return (uint64_t)v->v.i;
	return 0;
}

static const char *get_str(const struct mimg_value *obj, const char *key)
{
	const struct mimg_value *v = mimg_value_get(obj, key);
	return v && v->type == MIMG_VALUE_STRING ? v->v.s : NULL;
}

static bool get_bool(const struct mimg_value *obj, const char *key)
{
	const struct mimg_value *v = mimg_value_get(obj, key);
	return v && v->type == MIMG_VALUE_BOOL && v->v.b;
}

static void print_snapshots(FILE *out, const struct mimg_value *snaps)
{
	fprintf(out, "Snapshot list:\n");
	fprintf(out, "%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE",
		"DATE", "VM CLOCK", "ICOUNT");
	for (size_t i = 0; i < snaps->v.list.n; i++) {
		const struct mimg_value *s = &snaps->v.list.items[i];
		char size[32], date[32] = "", clock[32], icount[32] = "";
		time_t t = (time_t)get_u64(s, "date-sec");
		struct tm tm;
		uint64_t ns = get_u64(s, "vm-clock-sec") * 1000000000ull +
			      get_u64(s, "vm-clock-nsec");
		uint64_t secs = ns / 1000000000ull;

		cli_format_size(size, sizeof(size),
				get_u64(s, "vm-state-size"));
		if (localtime_r(&t, &tm))
			strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(clock, sizeof(clock), "%02d:%02d:%02d.%03d",
			 (int)(secs / 3600), (int)((secs / 60) % 60),
			 (int)(secs % 60), (int)((ns / 1000000) % 1000));
		if (mimg_value_get(s, "icount"))
			snprintf(icount, sizeof(icount), "%" PRIu64,
				 get_u64(s, "icount"));
		fprintf(out, "%-9s %-16s %8s%20s%13s%11s\n",
			get_str(s, "id") ? get_str(s, "id") : "",
			get_str(s, "name") ? get_str(s, "name") : "", size,
			date, clock, icount);
	}
}

void cli_print_snapshots(FILE *out, const struct mimg_value *snaps)
{
	print_snapshots(out, snaps);
}

/* "OVF system: 'name' (id), 2 CPUs, 1 GiB memory" */
static void print_ovf_system(FILE *out, const struct mimg_value *vs)
{
	char mem[32];
	if (!vs)
		return;
	fprintf(out, "OVF system: '%s' (%s)",
		get_str(vs, "name") ? get_str(vs, "name") : "",
		get_str(vs, "id") ? get_str(vs, "id") : "");
	if (mimg_value_get(vs, "cpus"))
		fprintf(out, ", %" PRIu64 " CPUs", get_u64(vs, "cpus"));
	if (mimg_value_get(vs, "memory")) {
		cli_format_size(mem, sizeof(mem), get_u64(vs, "memory"));
		fprintf(out, ", %s memory", mem);
	}
	fputc('\n', out);
}

/* "OVF disks (x.ovf):" then one line per disk, the first being the one
 * opened. */
static void print_ovf_disks(FILE *out, const struct mimg_value *a)
{
	const struct mimg_value *disks = mimg_value_get(a, "ovf-disks");
	char cap[32];
	if (!disks || disks->type != MIMG_VALUE_ARRAY)
		return;
	fprintf(out, "OVF disks (%s):\n", get_str(a, "ovf"));
	for (size_t i = 0; i < disks->v.list.n; i++) {
		const struct mimg_value *d = &disks->v.list.items[i];
		snprintf(cap, sizeof(cap), "unknown size");
		if (mimg_value_get(d, "capacity"))
			cli_format_size(cap, sizeof(cap),
					get_u64(d, "capacity"));
		fprintf(out, "    %s: '%s', %s", get_str(d, "id"),
			get_str(d, "file"), cap);
		if (mimg_value_get(d, "populated-size")) {
			cli_format_size(cap, sizeof(cap),
					get_u64(d, "populated-size"));
			fprintf(out, ", %s populated", cap);
		}
		if (get_str(d, "format") && strrchr(get_str(d, "format"), '#'))
			fprintf(out, ", %s",
				strrchr(get_str(d, "format"), '#') + 1);
		fprintf(out, "%s\n",
			i == get_u64(a, "ovf-disk") ? " (this image)" : "");
	}
	print_ovf_system(out, mimg_value_get(a, "ovf-system"));
}

/* "archive: gzip-compressed tar (63.7 KiB), member 'disk.raw', ...": the
 * size is the archive file's. */
static void print_archive(FILE *out, const struct mimg_value *a)
{
	const char *comp = get_str(a, "compression");
	const char *member = get_str(a, "tar-member");
	char size[32];
	cli_format_size(size, sizeof(size), get_u64(a, "size"));
	fprintf(out, "archive: %s%s%s (%s)", comp ? comp : "",
		comp && member ? "-compressed " : "", member ? "tar" : "",
		size);
	if (member)
		fprintf(out, ", member '%s'", member);
	fprintf(out, ", %s\n",
		get_bool(a, "streamed") ? "streamed, no temporary file"
					: "unpacked into a temporary file");
	print_ovf_disks(out, a);
	if (get_str(a, "manifest"))
		fprintf(out, "manifest: %s, %" PRIu64 " members checked\n",
			get_str(a, "manifest"), get_u64(a, "manifest-checked"));
}

void cli_print_info_human(FILE *out, const struct mimg_value *info)
{
	char vsize[32], dsize[32] = "unavailable";
	const struct mimg_value *v;
	const char *bf, *full, *bfmt;

	cli_format_size(vsize, sizeof(vsize), get_u64(info, "virtual-size"));
	if (mimg_value_get(info, "actual-size"))
		cli_format_size(dsize, sizeof(dsize),
				get_u64(info, "actual-size"));
	fprintf(out,
		"image: %s\nfile format: %s\n"
		"virtual size: %s (%" PRIu64 " bytes)\ndisk size: %s\n",
		get_str(info, "filename"), get_str(info, "format"), vsize,
		get_u64(info, "virtual-size"), dsize);
	if ((v = mimg_value_get(info, "archive")))
		print_archive(out, v);
	if ((v = mimg_value_get(info, "encrypted")) && v->v.b)
		fprintf(out, "encrypted: yes\n");
	if (mimg_value_get(info, "cluster-size"))
		fprintf(out, "cluster_size: %" PRIu64 "\n",
			get_u64(info, "cluster-size"));
	if ((v = mimg_value_get(info, "dirty-flag")) && v->v.b)
		fprintf(out, "cleanly shut down: no\n");
	if ((bf = get_str(info, "backing-filename"))) {
		full = get_str(info, "full-backing-filename");
		fprintf(out, "backing file: %s", bf);
		if (!full)
			fprintf(out, " (cannot determine actual path)");
		else if (strcmp(full, bf) != 0)
			fprintf(out, " (actual path: %s)", full);
		fputc('\n', out);
		if ((bfmt = get_str(info, "backing-filename-format")))
			fprintf(out, "backing file format: %s\n", bfmt);
	}
	if ((v = mimg_value_get(info, "snapshots")) &&
	    v->type == MIMG_VALUE_ARRAY && v->v.list.n)
		print_snapshots(out, v);
	if ((v = mimg_value_get(info, "format-specific")) &&
	    (v = mimg_value_get(v, "data")) && v->type == MIMG_VALUE_OBJECT) {
		fprintf(out, "Format specific information:\n");
		cli_dump_value(out, v, 1);
	}
}
