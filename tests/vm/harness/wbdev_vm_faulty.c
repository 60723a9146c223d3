// SPDX-License-Identifier: GPL-2.0
/*
 * Deliberately faulty module for the VM harness's own tests: it lets a
 * test provoke the kernel problems run-vm must report.
 *   warn_at_load=1          WARN_ON(1) in the init function
 *   fail_at_load=1          init returns -EINVAL (insmod fails)
 *   echo warn >/proc/wbdev_vm_faulty    WARN_ON(1)
 *   echo oops >/proc/wbdev_vm_faulty    NULL pointer write (oops)
 * Never load it outside a test VM.
 */
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/proc_fs.h>
#include <linux/string.h>
#include <linux/uaccess.h>

static bool warn_at_load;
module_param(warn_at_load, bool, 0444);
MODULE_PARM_DESC(warn_at_load, "WARN_ON(1) while loading");

static bool fail_at_load;
module_param(fail_at_load, bool, 0444);
MODULE_PARM_DESC(fail_at_load, "refuse to load with -EINVAL");

static struct proc_dir_entry *faulty_entry;

static ssize_t faulty_write(struct file *file, const char __user *buf,
			    size_t len, loff_t *ppos)
{
	char cmd[8] = "";
	int *target = NULL;

	if (copy_from_user(cmd, buf, min(len, sizeof(cmd) - 1)))
		return -EFAULT;
	if (!strncmp(cmd, "warn", 4)) {
		WARN_ON(1);
	} else if (!strncmp(cmd, "oops", 4)) {
		/* Hidden from the optimiser: a real store through NULL. */
		OPTIMIZER_HIDE_VAR(target);
		WRITE_ONCE(*target, 1);
	} else {
		return -EINVAL;
	}
	return len;
}

static const struct proc_ops faulty_proc_ops = {
	.proc_write = faulty_write,
};

static int __init wbdev_vm_faulty_init(void)
{
	if (fail_at_load)
		return -EINVAL;
	WARN_ON(warn_at_load);
	faulty_entry = proc_create("wbdev_vm_faulty", 0200, NULL,
				   &faulty_proc_ops);
	return faulty_entry ? 0 : -ENOMEM;
}

static void __exit wbdev_vm_faulty_exit(void)
{
	proc_remove(faulty_entry);
}

module_init(wbdev_vm_faulty_init);
module_exit(wbdev_vm_faulty_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("wbdev VM harness test module that warns or oopses on request");
