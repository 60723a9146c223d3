// SPDX-License-Identifier: GPL-2.0
/*
 * Smoke-test module for the wbdev VM harness: proves that a module built
 * against the cached Debian headers loads and that the guest can see it.
 * It exposes one read-only parameter that the guest reads through sysfs.
 */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

static int token = 42;
module_param(token, int, 0444);
MODULE_PARM_DESC(token, "value echoed back through sysfs");

static int __init wbdev_vm_smoke_init(void)
{
	pr_info("wbdev_vm_smoke: loaded, token=%d\n", token);
	return 0;
}

static void __exit wbdev_vm_smoke_exit(void)
{
	pr_info("wbdev_vm_smoke: unloaded\n");
}

module_init(wbdev_vm_smoke_init);
module_exit(wbdev_vm_smoke_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("wbdev VM harness smoke-test module");
