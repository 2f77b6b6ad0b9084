/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The VMDK descriptor parser and writer: syntax variants VMware and qemu
 * produce (CRLF, quoted names with spaces, comments, extra blanks, every
 * access mode and extent type), malformed input with clear errors, CID
 * replacement and the text written by create.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimg.h"
#include "testutil.h"
#include "../../formats/vmdk/vmdk.h"

static int parse(const char *text, struct vmdk_desc *d)
{
	return vmdk_desc_parse(text, strlen(text), "t.vmdk", d, true);
}

START_TEST(test_qemu_style)
{
	struct vmdk_desc d;
	const char *t =
		"# Disk DescriptorFile\nversion=1\nCID=a8b25d93\n"
		"parentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n"
		"# Extent description\nRW 10240 FLAT \"x-flat.vmdk\" 0\n\n"
		"# The Disk Data Base\n#DDB\n\n"
		"ddb.virtualHWVersion = \"4\"\nddb.adapterType = \"ide\"\n";
	ck_assert_int_eq(parse(t, &d), 0);
	ck_assert_uint_eq(d.cid, 0xa8b25d93u);
	ck_assert_uint_eq(d.parent_cid, 0xffffffffu);
	ck_assert_str_eq(d.create_type, "monolithicFlat");
	ck_assert_ptr_null(d.parent_hint);
	ck_assert_uint_eq(d.n_ext, 1);
	ck_assert_int_eq(d.ext[0].access, VMDK_RW);
	ck_assert_int_eq(d.ext[0].type, VMDK_EXT_FLAT);
	ck_assert_uint_eq(d.ext[0].sectors, 10240);
	ck_assert_uint_eq(d.ext[0].offset, 0);
	ck_assert_str_eq(d.ext[0].filename, "x-flat.vmdk");
	vmdk_desc_free(&d);
}
END_TEST

START_TEST(test_vmware_variants)
{
	struct vmdk_desc d;
	const char *t =
		"# Disk DescriptorFile\r\nversion=1\r\nencoding=\"UTF-8\"\r\n"
		"CID = 0000abcd\r\n  parentCID=12345678 \r\n"
		"createType = \"twoGbMaxExtentSparse\"\r\n"
		"parentFileNameHint=\"my parent.vmdk\"\r\n\r\n"
		"RW 4192256 SPARSE \"My Disk-s001.vmdk\"\r\n"
		"RDONLY 2048 FLAT \"raw disk.img\" 4096\r\n"
		"\tNOACCESS 100 ZERO\r\n"
		"RW 8 VMFS \"v.img\"\r\n"
		"ddb.geometry.cylinders = \"261\"\r\n";
	ck_assert_int_eq(parse(t, &d), 0);
	ck_assert_uint_eq(d.cid, 0xabcd);
	ck_assert_uint_eq(d.parent_cid, 0x12345678);
	ck_assert_str_eq(d.create_type, "twoGbMaxExtentSparse");
	ck_assert_str_eq(d.parent_hint, "my parent.vmdk");
	ck_assert_uint_eq(d.n_ext, 4);
	ck_assert_str_eq(d.ext[0].filename, "My Disk-s001.vmdk");
	ck_assert_int_eq(d.ext[1].access, VMDK_RDONLY);
	ck_assert_uint_eq(d.ext[1].offset, 4096);
	ck_assert_str_eq(d.ext[1].filename, "raw disk.img");
	ck_assert_int_eq(d.ext[2].access, VMDK_NOACCESS);
	ck_assert_int_eq(d.ext[2].type, VMDK_EXT_ZERO);
	ck_assert_ptr_null(d.ext[2].filename);
	ck_assert_int_eq(d.ext[3].type, VMDK_EXT_VMFS);
	vmdk_desc_free(&d);
}
END_TEST

START_TEST(test_embedded_nul_ends_text)
{
	struct vmdk_desc d;
	const char t[] = "CID=1\nRW 1 ZERO\n\0RW 5 GARBAGE";
	ck_assert_int_eq(vmdk_desc_parse(t, sizeof(t), "t", &d, true), 0);
	ck_assert_uint_eq(d.n_ext, 1);
	vmdk_desc_free(&d);
}
END_TEST

static void expect_error(const char *text, int err, const char *needle)
{
	struct vmdk_desc d;
	ck_assert_int_eq(parse(text, &d), err);
	ck_assert_msg(strstr(mimg_errmsg(), needle), "message '%s' lacks '%s'",
		      mimg_errmsg(), needle);
	ck_assert_msg(strstr(mimg_errmsg(), "t.vmdk"), "no file name in '%s'",
		      mimg_errmsg());
}

START_TEST(test_malformed)
{
	expect_error("createType=\"x\"\n", -EINVAL, "no extents");
	expect_error("RW 99999999999999999999999 SPARSE \"a\"\n", -EINVAL,
		     "invalid extent size");
	expect_error("RW 36028797018963968 FLAT \"a\" 0\n", -EINVAL,
		     "invalid extent size");
	expect_error("RW 0 FLAT \"a\" 0\n", -EINVAL, "invalid extent size");
	expect_error("RW -5 FLAT \"a\" 0\n", -EINVAL, "invalid extent size");
	expect_error("RW 5\n", -EINVAL, "extent type missing");
	expect_error("RW 5 SESPARSE \"a\"\n", -ENOTSUP, "SESPARSE");
	expect_error("RW 5 FLAT a.img 0\n", -EINVAL, "quoted");
	expect_error("RW 5 FLAT \"a.img 0\n", -EINVAL, "file name");
	expect_error("RW 5 FLAT \"\" 0\n", -EINVAL, "file name");
	expect_error("RW 5 FLAT \"a\" zz\n", -EINVAL, "offset");
	expect_error("RW 5 SPARSE \"a\" 7\n", -EINVAL, "offset");
	expect_error("CID=xyz\nRW 1 ZERO\n", -EINVAL, "CID");
	expect_error("parentCID=123456789\nRW 1 ZERO\n", -EINVAL, "parentCID");
}
END_TEST

START_TEST(test_too_many_extents)
{
	size_t n = (VMDK_MAX_EXTENTS + 1) * 12;
	char *t = malloc(n + 1), *p = t;
	for (int i = 0; i <= VMDK_MAX_EXTENTS; i++)
		p += sprintf(p, "RW 1 ZERO\n");
	struct vmdk_desc d;
	ck_assert_int_eq(vmdk_desc_parse(t, (size_t)(p - t), "t.vmdk", &d,
					 true),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(mimg_errmsg(), "more than"));
	free(t);
}
END_TEST

START_TEST(test_set_cid)
{
	const char *t =
		"version=1\r\nCID=5\r\nparentCID=ffffffff\r\nRW 1 ZERO\r\n";
	size_t n;
	char *o = vmdk_desc_set_cid(t, strlen(t), 0xdeadbeef, &n);
	ck_assert_str_eq(o,
			 "version=1\r\nCID=deadbeef\r\nparentCID=ffffffff\r\n"
			 "RW 1 ZERO\r\n");
	ck_assert_uint_eq(n, strlen(o));
	struct vmdk_desc d;
	ck_assert_int_eq(vmdk_desc_parse(o, n, "t", &d, true), 0);
	ck_assert_uint_eq(d.cid, 0xdeadbeef);
	ck_assert_uint_eq(d.parent_cid, 0xffffffff);
	vmdk_desc_free(&d);
	free(o);
}
END_TEST

START_TEST(test_format_roundtrip)
{
	struct vmdk_desc_extent ext[2] = {
		{VMDK_RW, VMDK_EXT_FLAT, 4194304, 0, "a b-f001.vmdk"},
		{VMDK_RW, VMDK_EXT_SPARSE, 2048, 0, "a b-s002.vmdk"},
	};
	struct vmdk_desc_params p = {
		.cid = 0x1234,
		.parent_cid = 0xcafe,
		.create_type = "custom",
		.parent_hint = "base.vmdk",
		.adapter_type = "lsilogic",
		.hwversion = "7",
		.toolsversion = "10",
		.total_sectors = 4196352,
		.vmware_fields = true,
		.ext = ext,
		.n_ext = 2,
	};
	char *t = vmdk_desc_format(&p);
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(strstr(t, "CID=00001234\nparentCID=0000cafe\n"));
	ck_assert_ptr_nonnull(
		strstr(t, "RW 4194304 FLAT \"a b-f001.vmdk\" 0\n"));
	ck_assert_ptr_nonnull(strstr(t, "RW 2048 SPARSE \"a b-s002.vmdk\"\n"));
	ck_assert_ptr_nonnull(strstr(t, "ddb.geometry.heads = \"255\"\n"));
	ck_assert_ptr_nonnull(strstr(t, "ddb.geometry.cylinders = \"261\"\n"));
	ck_assert_ptr_nonnull(strstr(t, "ddb.toolsInstallType = \"4\"\n"));
	ck_assert_ptr_nonnull(strstr(t, "ddb.virtualHWVersion = \"7\"\n"));
	ck_assert_ptr_nonnull(strstr(t, "00001234\"\n")); /* longContentID */
	struct vmdk_desc d;
	ck_assert_int_eq(vmdk_desc_parse(t, strlen(t), "t", &d, true), 0);
	ck_assert_uint_eq(d.cid, 0x1234);
	ck_assert_uint_eq(d.parent_cid, 0xcafe);
	ck_assert_str_eq(d.parent_hint, "base.vmdk");
	ck_assert_uint_eq(d.n_ext, 2);
	ck_assert_str_eq(d.ext[1].filename, "a b-s002.vmdk");
	vmdk_desc_free(&d);
	free(t);
}
END_TEST

START_TEST(test_random_cid)
{
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_lt(vmdk_random_cid(), 0xfffffffeu);
}
END_TEST

int main(void)
{
	return tu_main("vmdk_descriptor", "descriptor",
		       TU_TESTS(test_qemu_style, test_vmware_variants,
				test_embedded_nul_ends_text, test_malformed,
				test_too_many_extents, test_set_cid,
				test_format_roundtrip, test_random_cid));
}
