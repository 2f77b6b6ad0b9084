/* SPDX-License-Identifier: BSD-2-Clause
 * Copyright (c) 2026 The mimg authors
 *
 * The configuration-tree stand-in described in bhyve_config.h.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bhyve_config.h"

struct config_value {
	char *name, *value;
	struct config_value *next;
};

struct nvlist {
	struct config_value *head;
};

nvlist_t *test_nvlist_create(void)
{
	nvlist_t *nvl = calloc(1, sizeof(*nvl));

	ck_assert_ptr_nonnull(nvl);
	return nvl;
}

void test_nvlist_destroy(nvlist_t *nvl)
{
	if (!nvl)
		return;
	while (nvl->head) {
		struct config_value *v = nvl->head;

		nvl->head = v->next;
		free(v->name);
		free(v->value);
		free(v);
	}
	free(nvl);
}

static struct config_value *find(const nvlist_t *nvl, const char *name)
{
	for (struct config_value *v = nvl->head; v; v = v->next)
		if (!strcmp(v->name, name))
			return v;
	return NULL;
}

const char *get_config_value_node(const nvlist_t *parent, const char *name)
{
	struct config_value *v = find(parent, name);

	return v ? v->value : NULL;
}

void set_config_value_node(nvlist_t *parent, const char *name,
			   const char *value)
{
	struct config_value *v = find(parent, name);

	if (!v) {
		v = calloc(1, sizeof(*v));
		ck_assert_ptr_nonnull(v);
		v->name = strdup(name);
		v->next = parent->head;
		parent->head = v;
	}
	free(v->value);
	v->value = strdup(value);
	ck_assert(v->name && v->value);
}

/* bhyve accepts these spellings and exits on anything else. */
bool get_config_bool_node_default(const nvlist_t *parent, const char *name,
				  bool def)
{
	const char *v = get_config_value_node(parent, name);

	if (!v)
		return def;
	if (!strcasecmp(v, "true") || !strcasecmp(v, "on") ||
	    !strcasecmp(v, "yes") || !strcmp(v, "1"))
		return true;
	if (!strcasecmp(v, "false") || !strcasecmp(v, "off") ||
	    !strcasecmp(v, "no") || !strcmp(v, "0"))
		return false;
	ck_abort_msg("invalid value %s for boolean variable %s", v, name);
	return false;
}

void set_config_bool_node(nvlist_t *parent, const char *name, bool value)
{
	set_config_value_node(parent, name, value ? "true" : "false");
}

int test_boot_calls, test_boot_index, test_boot_ret;
struct pci_devinst *test_boot_pi;

int pci_emul_add_boot_device(struct pci_devinst *pi, int bootindex)
{
	test_boot_calls++;
	test_boot_pi = pi;
	test_boot_index = bootindex;
	return test_boot_ret;
}
