/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * Writing OVF 1.0 appliances (OVA).  Each source image is converted into
 * a streamOptimized VMDK in an anonymous file next to the output (its
 * directory and tables are written last, at its front, so it cannot go
 * straight into the tar, whose headers need sizes first); then the tar
 * is written in the order DSP0243 gives: the OVF descriptor, the SHA256
 * manifest, the disks in the order References lists them.  Headers are
 * ustar, pax only for a member too large for ustar (8 GiB).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive-sink.h"
#include "driver.h"
#include "dynlib.h"
#include "error.h"
#include "file-archive.h"
#include "file.h"
#include "image.h"
#include "vmdk/vmdk.h"

#define COPY_CHUNK (1u << 20)
#define BASE_MAX 64
#define MAX_SCSI_DISKS 15 /* unit 7 is the controller's own */
#define MAX_IDE_DISKS 4	  /* two channels of two */
#define SHA256_LEN 32

enum { OO_CONTROLLER, OO_CPUS, OO_MEMORY, OO_NAME, OO_NETWORK, OO_COUNT };
static const char *const controllers[] = {"scsi", "ide", NULL};
const struct mimg_optdesc mimg__ova_create_opts[] = {
	{"controller", MIMG_OPTK_ENUM,
	 "Disk controller: scsi (LSI Logic, "
	 "up to 15 disks) or ide (up to 4)",
	 "scsi", controllers, "controller", 0},
	{"cpus", MIMG_OPTK_NUMBER, "Virtual CPUs", "1", NULL, NULL, 0},
	{"memory", MIMG_OPTK_SIZE, "Memory size (whole MiB)", "1G", NULL, NULL,
	 0},
	{"name", MIMG_OPTK_STRING,
	 "Virtual machine name (default: the "
	 "file name without .ova)",
	 NULL, NULL, NULL, 0},
	{"network", MIMG_OPTK_STRING,
	 "Network of the machine's E1000 "
	 "adapter; empty for no adapter",
	 "VM Network", NULL, NULL, 0},
	{NULL, 0, NULL, NULL, NULL, NULL, 0},
};

/* One disk on its way into the appliance. */
struct ova_disk {
	int fd; /* the anonymous VMDK file */
	char member[BASE_MAX + 32];
	uint64_t capacity;  /* bytes (whole sectors) */
	uint64_t populated; /* bytes of grains holding data */
	uint64_t file_size;
	uint8_t sha256[SHA256_LEN];
};

struct ova_job {
	const char *path;
	const char *name;	 /* the virtual system's */
	char base[BASE_MAX + 1]; /* member names start with it */
	bool ide;
	uint64_t cpus, memory_mib;
	const char *network; /* NULL: no adapter */
	struct ova_disk *disks;
	size_t n;
	/* progress over all disks */
	const struct mimg_convert_opts *copts;
	uint64_t done_before, total;
};

/* Bytes that are well-formed UTF-8 with no control characters: what an
 * XML element or attribute may hold as it is. */
static bool printable_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		int more = *p < 0x80		 ? 0
			   : (*p & 0xe0) == 0xc0 ? 1
			   : (*p & 0xf0) == 0xe0 ? 2
			   : (*p & 0xf8) == 0xf0 ? 3
						 : -1;
		if (more < 0 || (*p < 0x20) || *p == 0x7f || (*p == 0xc0) ||
		    *p == 0xc1 || *p > 0xf4)
			return false;
		p++;
		for (int i = 0; i < more; i++, p++)
			if ((*p & 0xc0) != 0x80)
				return false;
	}
	return true;
}

/* The virtual system's name in member names: [A-Za-z0-9._-] kept, the
 * rest '_', never starting with '.' or '-'. */
static void member_base(const char *name, char *out)
{
	size_t n = 0;
	for (const char *c = name; *c && n < BASE_MAX; c++) {
		bool ok = (*c >= 'a' && *c <= 'z') ||
			  (*c >= 'A' && *c <= 'Z') ||
			  (*c >= '0' && *c <= '9') || *c == '_' ||
			  (n > 0 && (*c == '.' || *c == '-'));
		out[n++] = ok ? *c : '_';
	}
	out[n] = 0;
	if (n == 0)
		snprintf(out, BASE_MAX + 1, "vm");
}

/* "dir/appliance.ova" -> "appliance" (malloc'ed). */
static char *default_name(const char *path)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	size_t n = strlen(b);
	if (n > 4 && strcasecmp(b + n - 4, ".ova") == 0)
		n -= 4;
	char *s = strndup(b, n);
	return s;
}

static int parse_opts(struct ova_job *j, const struct mimg_opt *opts,
		      size_t nopts, char **namep)
{
	struct mimg_optval v[OO_COUNT];
	int r = mimg__opts_validate(mimg__ova_create_opts, NULL, opts, nopts,
				    v);
	if (r < 0)
		return r;
	j->ide = v[OO_CONTROLLER].u == 1;
	j->cpus = v[OO_CPUS].u;
	if (j->cpus < 1 || j->cpus > 768)
		return mimg_err(-EINVAL,
				"%s: ova: cpus=%" PRIu64 " is not "
				"between 1 and 768",
				j->path, j->cpus);
	if (v[OO_MEMORY].u < (1u << 20) || v[OO_MEMORY].u % (1u << 20) ||
	    v[OO_MEMORY].u > ((uint64_t)1 << 50))
		return mimg_err(-EINVAL,
				"%s: ova: memory=%" PRIu64 " is not a "
				"whole number of MiB between 1 MiB and 1 PiB",
				j->path, v[OO_MEMORY].u);
	j->memory_mib = v[OO_MEMORY].u >> 20;
	j->network = v[OO_NETWORK].s && *v[OO_NETWORK].s ? v[OO_NETWORK].s
							 : NULL;
	*namep = v[OO_NAME].s ? strdup(v[OO_NAME].s) : default_name(j->path);
	if (!*namep)
		return mimg_err(-ENOMEM, "out of memory");
	if (!**namep || !printable_utf8(*namep) ||
	    (j->network && !printable_utf8(j->network)))
		return mimg_err(-EINVAL,
				"%s: ova: the name and network must be "
				"UTF-8 text without control characters",
				j->path);
	j->name = *namep;
	member_base(j->name, j->base);
	return 0;
}

static void progress_cb(void *opaque, uint64_t done, uint64_t total)
{
	struct ova_job *j = opaque;
	(void)total;
	j->copts->progress(j->copts->opaque, j->done_before + done, j->total);
}

/* The dup of D's file, as a host file named by its member. */
static int disk_file(struct ova_disk *d, unsigned flags, struct mimg_file **fp)
{
	int fd = dup(d->fd);
	if (fd < 0)
		return mimg_err_errno(-errno, "%s: dup", d->member);
	return mimg_file_open_fd(fp, fd, d->member, flags);
}

/* Bytes of D's grains that hold data, from its tables. */
static int count_populated(struct ova_disk *d)
{
	struct mimg_file *f;
	struct mimg *img;
	int r = disk_file(d, 0, &f);
	if (r < 0 ||
	    (r = mimg__open_on_file(&img, d->member, "vmdk", 0, f)) < 0)
		return r;
	d->populated = 0;
	for (uint64_t off = 0, pnum; off < d->capacity && r == 0; off += pnum) {
		unsigned st;
		r = mimg_block_status(img, off, d->capacity - off, &pnum, &st,
				      NULL, 0);
		if (r == 0 && (st & MIMG_BS_DATA) && !(st & MIMG_BS_ZERO))
			d->populated += pnum;
	}
	mimg_close(img);
	return r;
}

/* Convert SRC into a new streamOptimized VMDK in D's anonymous file. */
static int convert_disk(struct ova_job *j, struct mimg *src, struct ova_disk *d,
			const char *dir)
{
	struct mimg_convert_opts o = {.size = sizeof(o)};
	struct mimg_file *f;
	struct mimg *img;
	struct stat st;
	int r;

	if (j->copts)
		o = *j->copts;
	o.dst_offset = 0;
	o.target_has_backing = 0;
	o.existing_target = 0;
	o.target_is_zero = 0;
	if (o.progress) {
		o.progress = progress_cb;
		o.opaque = j;
	}
	if ((d->fd = mimg__anonymous_file(dir)) < 0)
		return mimg_err_errno(d->fd,
				      "%s: cannot create a temporary "
				      "file in %s for %s",
				      j->path, dir, d->member);
	d->capacity = (mimg_size(src) + 511) & ~(uint64_t)511;
	if ((r = disk_file(d, MIMG_FILE_RDWR, &f)) < 0)
		return r;
	if ((r = vmdk_create_stream_on(f, d->member, mimg_size(src),
				       j->ide ? "ide" : "lsilogic")) < 0) {
		mimg_file_close(f);
		return r;
	}
	r = mimg__open_on_file(&img, d->member, "vmdk",
			       MIMG_OPEN_RDWR | MIMG_OPEN_NO_FLUSH, f);
	if (r < 0)
		return r;
	r = mimg_convert(src, img, &o);
	int r2 = mimg_close(img);
	if (r < 0 || (r = r2) < 0)
		return r;
	j->done_before += mimg_size(src);
	if (fstat(d->fd, &st) != 0)
		return mimg_err_errno(-errno, "%s: stat", d->member);
	d->file_size = (uint64_t)st.st_size;
	return count_populated(d);
}

/* D's written file, read back in order a COPY_CHUNK into BUF at a
 * time, each piece handed to EACH(OPAQUE, BUF, LEN).  Returns 0 or the
 * first error. */
static int read_disk_back(const struct ova_disk *d, uint8_t *buf,
			  int (*each)(void *opaque, const uint8_t *p, size_t n),
			  void *opaque)
{
	int r = 0;
	for (uint64_t off = 0; off < d->file_size && r == 0;) {
		size_t n = d->file_size - off < COPY_CHUNK
				   ? (size_t)(d->file_size - off)
				   : COPY_CHUNK;
		ssize_t got = pread(d->fd, buf, n, (off_t)off);
		if (got <= 0)
			return mimg_err_errno(got < 0 ? -errno : -EIO,
					      "%s: reading it back", d->member);
		r = each(opaque, buf, (size_t)got);
		off += (uint64_t)got;
	}
	return r;
}

static int hash_piece(void *ctx, const uint8_t *p, size_t n)
{
	return mimg__libcrypto.EVP_DigestUpdate(ctx, p, n)
		       ? 0
		       : mimg_err(-ENOMEM, "digest: out of memory");
}

/* SHA256 of D's file, read once before the tar is written. */
static int hash_disk(struct ova_disk *d, uint8_t *buf)
{
	int r = mimg__crypto_lib_load(d->member);
	if (r < 0)
		return r;
	EVP_MD_CTX *ctx = mimg__libcrypto.EVP_MD_CTX_new();
	if (!ctx ||
	    !mimg__libcrypto.EVP_DigestInit_ex(ctx,
					       mimg__libcrypto.EVP_sha256(),
					       NULL)) {
		mimg__libcrypto.EVP_MD_CTX_free(ctx);
		return mimg_err(-ENOMEM, "digest: out of memory");
	}
	r = read_disk_back(d, buf, hash_piece, ctx);
	if (r == 0)
		mimg__libcrypto.EVP_DigestFinal_ex(ctx, d->sha256, NULL);
	mimg__libcrypto.EVP_MD_CTX_free(ctx);
	return r;
}

static void put_escaped(FILE *m, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", m); break;
		case '<': fputs("&lt;", m); break;
		case '>': fputs("&gt;", m); break;
		case '"': fputs("&quot;", m); break;
		default: fputc(*s, m);
		}
	}
}

static void put_item(FILE *m, const char *body)
{
	fprintf(m, "      <Item>\n%s      </Item>\n", body);
}

/* The rasd elements of one Item are in the CIM schema's (alphabetical)
 * order, which OVF validators check. */
static void put_hardware(FILE *m, const struct ova_job *j)
{
	char b[1024];
	fputs("    <VirtualHardwareSection>\n"
	      "      <Info>Virtual hardware requirements</Info>\n"
	      "      <System>\n"
	      "        <vssd:ElementName>Virtual Hardware Family"
	      "</vssd:ElementName>\n"
	      "        <vssd:InstanceID>0</vssd:InstanceID>\n"
	      "        <vssd:VirtualSystemIdentifier>",
	      m);
	put_escaped(m, j->name);
	fputs("</vssd:VirtualSystemIdentifier>\n"
	      "        <vssd:VirtualSystemType>vmx-07"
	      "</vssd:VirtualSystemType>\n"
	      "      </System>\n",
	      m);
	snprintf(b, sizeof(b),
		 "        <rasd:AllocationUnits>hertz * 10^6"
		 "</rasd:AllocationUnits>\n"
		 "        <rasd:Description>Number of Virtual CPUs"
		 "</rasd:Description>\n"
		 "        <rasd:ElementName>%" PRIu64 " virtual CPU(s)"
		 "</rasd:ElementName>\n"
		 "        <rasd:InstanceID>1</rasd:InstanceID>\n"
		 "        <rasd:ResourceType>3</rasd:ResourceType>\n"
		 "        <rasd:VirtualQuantity>%" PRIu64
		 "</rasd:VirtualQuantity>\n",
		 j->cpus, j->cpus);
	put_item(m, b);
	snprintf(b, sizeof(b),
		 "        <rasd:AllocationUnits>byte * 2^20"
		 "</rasd:AllocationUnits>\n"
		 "        <rasd:Description>Memory Size</rasd:Description>\n"
		 "        <rasd:ElementName>%" PRIu64 "MB of memory"
		 "</rasd:ElementName>\n"
		 "        <rasd:InstanceID>2</rasd:InstanceID>\n"
		 "        <rasd:ResourceType>4</rasd:ResourceType>\n"
		 "        <rasd:VirtualQuantity>%" PRIu64
		 "</rasd:VirtualQuantity>\n",
		 j->memory_mib, j->memory_mib);
	put_item(m, b);
	/* controllers: instance 3 (and 4, IDE's second channel) */
	int nctl = j->ide ? (j->n > 2 ? 2 : 1) : 1;
	for (int c = 0; c < nctl; c++) {
		snprintf(b, sizeof(b),
			 "        <rasd:Address>%d</rasd:Address>\n"
			 "        <rasd:Description>%s Controller"
			 "</rasd:Description>\n"
			 "        <rasd:ElementName>%s Controller %d"
			 "</rasd:ElementName>\n"
			 "        <rasd:InstanceID>%d</rasd:InstanceID>\n"
			 "%s"
			 "        <rasd:ResourceType>%d</rasd:ResourceType>\n",
			 c, j->ide ? "IDE" : "SCSI", j->ide ? "IDE" : "SCSI", c,
			 3 + c,
			 j->ide ? ""
				: "        <rasd:ResourceSubType>lsilogic"
				  "</rasd:ResourceSubType>\n",
			 j->ide ? 5 : 6);
		put_item(m, b);
	}
	int id = 3 + nctl;
	for (size_t i = 0; i < j->n; i++) {
		size_t unit = j->ide ? i % 2 : i < 7 ? i : i + 1;
		int parent = j->ide ? 3 + (int)(i / 2) : 3;
		snprintf(b, sizeof(b),
			 "        <rasd:AddressOnParent>%zu"
			 "</rasd:AddressOnParent>\n"
			 "        <rasd:ElementName>Hard Disk %zu"
			 "</rasd:ElementName>\n"
			 "        <rasd:HostResource>ovf:/disk/vmdisk%zu"
			 "</rasd:HostResource>\n"
			 "        <rasd:InstanceID>%d</rasd:InstanceID>\n"
			 "        <rasd:Parent>%d</rasd:Parent>\n"
			 "        <rasd:ResourceType>17</rasd:ResourceType>\n",
			 unit, i + 1, i + 1, id++, parent);
		put_item(m, b);
	}
	if (j->network) {
		fputs("      <Item>\n"
		      "        <rasd:AddressOnParent>7</rasd:AddressOnParent>\n"
		      "        <rasd:AutomaticAllocation>true"
		      "</rasd:AutomaticAllocation>\n"
		      "        <rasd:Connection>",
		      m);
		put_escaped(m, j->network);
		fputs("</rasd:Connection>\n"
		      "        <rasd:Description>E1000 ethernet adapter"
		      "</rasd:Description>\n"
		      "        <rasd:ElementName>Network adapter 1"
		      "</rasd:ElementName>\n",
		      m);
		fprintf(m,
			"        <rasd:InstanceID>%d</rasd:InstanceID>\n"
			"        <rasd:ResourceSubType>E1000"
			"</rasd:ResourceSubType>\n"
			"        <rasd:ResourceType>10</rasd:ResourceType>\n"
			"      </Item>\n",
			id);
	}
	fputs("    </VirtualHardwareSection>\n", m);
}

/* The OVF 1.0 descriptor (malloc'ed text, its length in *LENP). */
static char *ovf_text(const struct ova_job *j, size_t *lenp)
{
	char *text = NULL;
	FILE *m = open_memstream(&text, lenp);
	if (!m)
		return NULL;
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	      "<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\""
	      " xmlns:cim=\"http://schemas.dmtf.org/wbem/wscim/1/common\""
	      " xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\""
	      " xmlns:rasd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/"
	      "2/CIM_ResourceAllocationSettingData\""
	      " xmlns:vssd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/"
	      "2/CIM_VirtualSystemSettingData\""
	      " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
	      "  <References>\n",
	      m);
	for (size_t i = 0; i < j->n; i++)
		fprintf(m,
			"    <File ovf:href=\"%s\" ovf:id=\"file%zu\" "
			"ovf:size=\"%" PRIu64 "\"/>\n",
			j->disks[i].member, i + 1, j->disks[i].file_size);
	fputs("  </References>\n"
	      "  <DiskSection>\n"
	      "    <Info>Virtual disk information</Info>\n",
	      m);
	for (size_t i = 0; i < j->n; i++)
		fprintf(m,
			"    <Disk ovf:capacity=\"%" PRIu64 "\" "
			"ovf:capacityAllocationUnits=\"byte\" "
			"ovf:diskId=\"vmdisk%zu\" ovf:fileRef=\"file%zu\" "
			"ovf:format=\"http://www.vmware.com/interfaces/"
			"specifications/vmdk.html#streamOptimized\" "
			"ovf:populatedSize=\"%" PRIu64 "\"/>\n",
			j->disks[i].capacity, i + 1, i + 1,
			j->disks[i].populated);
	fputs("  </DiskSection>\n", m);
	if (j->network) {
		fputs("  <NetworkSection>\n"
		      "    <Info>The list of logical networks</Info>\n"
		      "    <Network ovf:name=\"",
		      m);
		put_escaped(m, j->network);
		fputs("\">\n      <Description>The ", m);
		put_escaped(m, j->network);
		fputs(" network</Description>\n    </Network>\n"
		      "  </NetworkSection>\n",
		      m);
	}
	fputs("  <VirtualSystem ovf:id=\"", m);
	put_escaped(m, j->name);
	fputs("\">\n    <Info>A virtual machine</Info>\n    <Name>", m);
	put_escaped(m, j->name);
	fputs("</Name>\n"
	      "    <OperatingSystemSection ovf:id=\"102\">\n"
	      "      <Info>The kind of installed guest operating system"
	      "</Info>\n"
	      "      <Description>Other 64-Bit</Description>\n"
	      "    </OperatingSystemSection>\n",
	      m);
	put_hardware(m, j);
	fputs("  </VirtualSystem>\n</Envelope>\n", m);
	if (fclose(m) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static void hex(char *out, const uint8_t *md, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

/* "SHA256(name)= hex" lines, as ovftool writes them. */
static char *manifest_text(const struct ova_job *j, const char *ovf_name,
			   const uint8_t *ovf_md, size_t *lenp)
{
	char *text = NULL, h[2 * SHA256_LEN + 1];
	FILE *m = open_memstream(&text, lenp);
	if (!m)
		return NULL;
	hex(h, ovf_md, SHA256_LEN);
	fprintf(m, "SHA256(%s)= %s\n", ovf_name, h);
	for (size_t i = 0; i < j->n; i++) {
		hex(h, j->disks[i].sha256, SHA256_LEN);
		fprintf(m, "SHA256(%s)= %s\n", j->disks[i].member, h);
	}
	if (fclose(m) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static int tar_fail(struct archive *a, const char *path)
{
	return mimg__archive_write_fail(a, path, "writing the OVA");
}

static int tar_header(struct archive *a, const char *path, const char *name,
		      uint64_t size, time_t now)
{
	struct archive_entry *e = mimg__libarchive.archive_entry_new();
	if (!e)
		return mimg_err(-ENOMEM, "out of memory");
	mimg__libarchive.archive_entry_set_pathname(e, name);
	mimg__libarchive.archive_entry_set_size(e, (la_int64_t)size);
	mimg__libarchive.archive_entry_set_filetype(e, AE_IFREG);
	mimg__libarchive.archive_entry_set_perm(e, 0644);
	mimg__libarchive.archive_entry_set_mtime(e, now, 0);
	int r = mimg__libarchive.archive_write_header(a, e);
	mimg__libarchive.archive_entry_free(e);
	return r == ARCHIVE_OK ? 0 : tar_fail(a, path);
}

static int tar_data(struct archive *a, const char *path, const void *buf,
		    size_t n)
{
	return mimg__libarchive.archive_write_data(a, buf, n) == (la_ssize_t)n
		       ? 0
		       : tar_fail(a, path);
}

static int tar_member(struct archive *a, const char *path, const char *name,
		      const char *text, size_t len, time_t now)
{
	int r = tar_header(a, path, name, len, now);
	return r < 0 ? r : tar_data(a, path, text, len);
}

/* The tar member being written and the archive's path, for tar_piece. */
struct tar_out {
	struct archive *a;
	const char *path;
};

static int tar_piece(void *opaque, const uint8_t *p, size_t n)
{
	struct tar_out *t = opaque;
	return tar_data(t->a, t->path, p, n);
}

static int tar_disk(struct archive *a, const char *path,
		    const struct ova_disk *d, uint8_t *buf, time_t now)
{
	struct tar_out t = {a, path};
	int r = tar_header(a, path, d->member, d->file_size, now);
	return r < 0 ? r : read_disk_back(d, buf, tar_piece, &t);
}

static int write_tar(struct ova_job *j, struct mimg_file *out, uint8_t *buf)
{
	char ovf_name[BASE_MAX + 8], mf_name[BASE_MAX + 8];
	uint8_t ovf_md[SHA256_LEN];
	struct mimg_sink sink = {.f = out};
	size_t olen = 0, mlen = 0;
	char *ovf = NULL, *mf = NULL;
	time_t now = time(NULL);
	struct archive *a = NULL;
	int r = 0;

	snprintf(ovf_name, sizeof(ovf_name), "%s.ovf", j->base);
	snprintf(mf_name, sizeof(mf_name), "%s.mf", j->base);
	if ((r = mimg__archive_lib_load(j->path)) < 0 ||
	    (r = mimg__crypto_lib_load(j->path)) < 0)
		return r;
	if (!(ovf = ovf_text(j, &olen)) ||
	    !mimg__libcrypto.EVP_Digest(ovf, olen, ovf_md, NULL,
					mimg__libcrypto.EVP_sha256(), NULL) ||
	    !(mf = manifest_text(j, ovf_name, ovf_md, &mlen)) ||
	    !(a = mimg__libarchive.archive_write_new())) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto out;
	}
	if (mimg__libarchive.archive_write_set_format_pax_restricted(a) !=
		    ARCHIVE_OK ||
	    mimg__libarchive.archive_write_open2(a, &sink, NULL,
						 mimg__sink_archive_write, NULL,
						 NULL) != ARCHIVE_OK) {
		r = tar_fail(a, j->path);
		goto out;
	}
	r = tar_member(a, j->path, ovf_name, ovf, olen, now);
	if (r == 0)
		r = tar_member(a, j->path, mf_name, mf, mlen, now);
	for (size_t i = 0; i < j->n && r == 0; i++)
		r = tar_disk(a, j->path, &j->disks[i], buf, now);
	if (r == 0 && mimg__libarchive.archive_write_close(a) != ARCHIVE_OK)
		r = tar_fail(a, j->path);
	if (r == 0)
		r = mimg_file_truncate(out, sink.pos);
out:
	mimg__libarchive.archive_write_free(a);
	free(ovf);
	free(mf);
	return r;
}

/* The directory of PATH, for the temporary disks (malloc'ed). */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

int mimg_ova_write(const char *path, struct mimg *const *srcs, size_t n,
		   const struct mimg_opt *opts, size_t nopts,
		   const struct mimg_convert_opts *copts)
{
	struct ova_job j = {.path = path, .copts = copts, .n = n};
	struct mimg_file *out = NULL;
	char *name = NULL, *dir = NULL;
	uint8_t *buf = NULL;
	int r;

	struct mimg_convert_opts co;

	mimg_err_clear();
	if (!path || (n && !srcs))
		return mimg_err(-EINVAL, "mimg_ova_write: no path or sources");
	if ((r = mimg__convert_opts_get(copts, &co)) < 0)
		return r;
	j.copts = &co;
	if ((r = parse_opts(&j, opts, nopts, &name)) < 0)
		goto out;
	if (n == 0 || n > (j.ide ? MAX_IDE_DISKS : MAX_SCSI_DISKS)) {
		r = mimg_err(-EINVAL,
			     "%s: ova: %zu disks; one %s controller "
			     "takes 1 to %d",
			     path, n, j.ide ? "IDE" : "SCSI",
			     j.ide ? MAX_IDE_DISKS : MAX_SCSI_DISKS);
		goto out;
	}
	if (!(j.disks = calloc(n, sizeof(*j.disks))) ||
	    !(buf = malloc(COPY_CHUNK)) || !(dir = dir_of(path))) {
		r = mimg_err(-ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		j.disks[i].fd = -1;
		snprintf(j.disks[i].member, sizeof(j.disks[i].member),
			 "%s-disk%zu.vmdk", j.base, i + 1);
		j.total += mimg_size(srcs[i]);
	}
	if ((r = mimg_file_open(&out, path,
				MIMG_FILE_RDWR | MIMG_FILE_CREATE)) < 0)
		goto out;
	for (size_t i = 0; i < n && r == 0; i++)
		r = convert_disk(&j, srcs[i], &j.disks[i], dir);
	for (size_t i = 0; i < n && r == 0; i++)
		r = hash_disk(&j.disks[i], buf);
	if (r == 0)
		r = write_tar(&j, out, buf);
out:
	if (out) {
		int r2 = mimg_file_close(out);
		if (r == 0)
			r = r2;
	}
	for (size_t i = 0; j.disks && i < n; i++)
		if (j.disks[i].fd >= 0)
			close(j.disks[i].fd);
	free(j.disks);
	free(buf);
	free(dir);
	free(name);
	return r;
}
