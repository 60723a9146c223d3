/* SPDX-License-Identifier: MIT */
/*
 * wbdev_kmod.c - adapter backend over the wbdev kernel module (/dev/wbdev,
 * os_dep/kmod; interface in os_dep/include/linux/wbdev.h).
 *
 * Every op is one system call on the device fd or on its mappings:
 * mmap/munmap, WBDEV_IOC_PROTECT, write(2) of a pointer list,
 * WBDEV_IOC_COLLECT (with WBDEV_IOC_COLLECT_REPROTECT: collect and re-protect
 * in one call), WBDEV_IOC_DISCARD, WBDEV_IOC_UNPROTECT (module version 2;
 * -ENOTSUP from a version 1 module).  Fork: fork_prepare arms the module's
 * fork copy, so fork() itself copies the heap for the child (the parent's
 * writers wait meanwhile); fork_child claims the copies on a fresh context
 * and maps them at the same addresses.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/wbdev.h>

#include "wbdev_backend.h"

_Static_assert(sizeof(void *) == sizeof(__u64),
	       "the log holds 64-bit addresses; 64-bit only");

struct kmod_state {
	int fd;
	int unprotect;		/* the module has WBDEV_IOC_UNPROTECT */
	int fork_default;	/* WBDEV_FORK_* outside the fork hooks */
};

static int kfd(const wbdev_t *w)
{
	return ((const struct kmod_state *)w->priv)->fd;
}

static int open_dev(void)
{
	int fd = open("/dev/wbdev", O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int kmod_open(wbdev_t *w)
{
	struct kmod_state *s;
	struct wbdev_info info;
	int fd = open_dev();

	if (fd < 0) {
		wbdev_log(w, "kmod backend: cannot open /dev/wbdev: %s",
			  strerror(-fd));
		return -ENODEV;
	}
	/* Versions only add ioctls: any version from 1 works. */
	if (ioctl(fd, WBDEV_IOC_INFO, &info) || info.version < 1) {
		wbdev_log(w, "kmod backend: /dev/wbdev is not a wbdev device");
		close(fd);
		return -ENODEV;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	s->fd = fd;
	s->unprotect = info.version >= 2;
	/* mode for forks not made through the hooks (plain ones) */
	s->fork_default = (info.features & WBDEV_FEAT_FORK_AUTO) ?
			  WBDEV_FORK_AUTO : WBDEV_FORK_STUB;
	w->priv = s;
	return 0;
}

static void kmod_close(wbdev_t *w)
{
	struct kmod_state *s = w->priv;

	if (s->fd >= 0)
		close(s->fd);
	free(s);
	w->priv = NULL;
}

static unsigned int kmod_caps(const wbdev_t *w)
{
	/*
	 * No WBDEV_CAP_UNPROTECT even when the module has the ioctl: it
	 * takes a write fault per resident page in the kernel, which costs
	 * about what the faults it saves cost (measured in qemu: bdwgc's
	 * GCBench pauses grew by half with it).  wbdev_unprotect still
	 * works; it is just not worth calling on memory that may not be
	 * written.
	 */
	(void)w;
	return WBDEV_CAP_KERNEL_WRITES | WBDEV_CAP_COLLECT_REPROTECT |
	       WBDEV_CAP_FORK_TRACKING;
}

static int kmod_map(wbdev_t *w, void *hint, size_t len, void **addr)
{
	void *p = mmap(hint, len, PROT_READ | PROT_WRITE, MAP_SHARED, kfd(w),
		       0);

	if (p == MAP_FAILED)
		return -errno;
	*addr = p;
	return 0;
}

/* The module frees an unmapped part and drops it from the log. */
static int kmod_unmap(wbdev_t *w, void *addr, size_t len)
{
	(void)w;
	return munmap(addr, len) ? -errno : 0;
}

static int range_ioctl(wbdev_t *w, unsigned long cmd, void *addr, size_t len)
{
	struct wbdev_range r = { (uintptr_t)addr, len };

	return ioctl(kfd(w), cmd, &r) ? -errno : 0;
}

static int kmod_discard(wbdev_t *w, void *addr, size_t len)
{
	return range_ioctl(w, WBDEV_IOC_DISCARD, addr, len);
}

static int kmod_protect(wbdev_t *w, void *addr, size_t len)
{
	w->stats.protect_calls++;
	return range_ioctl(w, WBDEV_IOC_PROTECT, addr, len);
}

/*
 * The module takes the write faults of the resident pages and logs the
 * whole range.  A module without the ioctl (ENOTTY; EINVAL from an older
 * one, the core having checked the range) changes nothing: say -ENOTSUP,
 * now and from then on without another system call.
 */
static int kmod_unprotect(wbdev_t *w, void *addr, size_t len)
{
	struct kmod_state *s = w->priv;
	int err;

	if (!s->unprotect)
		return -ENOTSUP;
	w->stats.unprotect_calls++;
	err = range_ioctl(w, WBDEV_IOC_UNPROTECT, addr, len);
	if (err == -ENOTTY || err == -EINVAL) {
		s->unprotect = 0;
		return -ENOTSUP;
	}
	return err;
}

static int kmod_protect_pages(wbdev_t *w, void *const *addrs, size_t n)
{
	const char *p = (const char *)addrs;
	size_t left = n * sizeof(*addrs);

	/* The core validated every entry; a short count means a signal. */
	while (left) {
		ssize_t r = write(kfd(w), p, left);

		w->stats.protect_calls++;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		left -= (size_t)r;
	}
	return 0;
}

static int kmod_collect(wbdev_t *w, struct wbdev_collect *c)
{
	uintptr_t end = (uintptr_t)c->start + c->len;
	struct wbdev_collect_arg a = {
		.start = c->cursor,
		.len = end - c->cursor,
		.buf = (uintptr_t)(c->pages + c->count),
		.max = c->max - c->count,
		.flags = (c->flags & WBDEV_COLLECT_REPROTECT) ?
			 WBDEV_IOC_COLLECT_REPROTECT : 0,
	};

	if (c->cursor >= end) {
		c->cursor = end;
		return 0;
	}
	w->stats.collect_calls++;
	if (ioctl(kfd(w), WBDEV_IOC_COLLECT, &a))
		return -errno;
	c->count += a.count;
	if (!a.next) {
		c->cursor = end;
		return 0;
	}
	c->cursor = a.next;
	return 1;
}

static int kmod_fork_prepare(wbdev_t *w)
{
	return ioctl(kfd(w), WBDEV_IOC_SET_FORK_MODE, WBDEV_FORK_COPY) ?
	       -errno : 0;
}

static int kmod_fork_parent(wbdev_t *w)
{
	struct kmod_state *s = w->priv;

	return ioctl(kfd(w), WBDEV_IOC_SET_FORK_MODE, s->fork_default) ?
	       -errno : 0;
}

/*
 * The inherited fd is the parent's context and the inherited mappings are
 * stubs (SIGBUS): claim the copies fork made on a new context, map each at
 * its stub's place, then drop the parent's fd.
 */
static int kmod_fork_child(wbdev_t *w)
{
	struct kmod_state *s = w->priv;
	struct wbdev_fork_claim c = { .fd = s->fd };
	struct wbdev_range *r = NULL;
	int fd = open_dev(), err = 0;
	size_t i;

	if (fd < 0)
		return fd;
	for (;;) {
		c.ranges = (uintptr_t)r;
		if (!ioctl(fd, WBDEV_IOC_FORK_CLAIM, &c))
			break;
		if (errno != ENOSPC) {
			err = -errno;
			goto out;
		}
		free(r);
		c.max = c.count;
		r = calloc(c.max, sizeof(*r));
		if (!r) {
			err = -ENOMEM;
			goto out;
		}
	}
	/* If fork was not armed there is no copy: the memory is lost. */
	if (c.count == 0 && w->nmaps) {
		wbdev_log(w, "kmod backend: fork was not prepared; the child "
			  "has no copy of the heap");
		err = -ENOTSUP;
	}
	for (i = 0; i < c.count; i++) {
		void *p = mmap((void *)(uintptr_t)r[i].start, r[i].len,
			       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			       fd, 0);

		if (p == MAP_FAILED && !err)
			err = -errno;
	}
out:
	free(r);
	if (err && err != -ENOTSUP) {
		close(fd);
		return err;
	}
	close(s->fd);
	s->fd = fd;
	return err;
}

const struct wbdev_backend_ops wbdev_kmod_ops = {
	.name = "kmod",
	.id = WBDEV_BACKEND_KMOD,
	.open = kmod_open,
	.close = kmod_close,
	.caps = kmod_caps,
	.map = kmod_map,
	.unmap = kmod_unmap,
	.discard = kmod_discard,
	.protect = kmod_protect,
	.protect_pages = kmod_protect_pages,
	.unprotect = kmod_unprotect,
	.collect = kmod_collect,
	.fork_prepare = kmod_fork_prepare,
	.fork_parent = kmod_fork_parent,
	.fork_child = kmod_fork_child,
};
