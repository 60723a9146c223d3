/* SPDX-License-Identifier: MIT */
/*
 * wbdev_uffd.c - adapter backend without a module (Linux >= 6.7):
 * userfaultfd in asynchronous write-protect mode records writes in the
 * page tables (the kernel resolves the write fault itself, no message
 * reaches user space), and the PAGEMAP_SCAN ioctl on /proc/self/pagemap
 * reports the written pages and write-protects them again atomically.
 *
 * Privileges: the userfaultfd is created with UFFD_USER_MODE_ONLY, which
 * the kernel allows to every user whatever vm.unprivileged_userfaultfd
 * says.  If userfaultfd(2) itself is refused (a seccomp filter, or a
 * kernel without UFFD_USER_MODE_ONLY), /dev/userfaultfd is tried (mode
 * 0600 root-only on Debian).  In async mode a write fault taken from
 * kernel mode (read(2) into tracked memory...) is resolved in the kernel
 * like a user one, so kernel writes are recorded in every mode.
 */
/* Self-contained: bdwgc compiles this file with its own flags. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>

#include "wbdev_backend.h"

/*
 * Kernel interfaces newer than Debian 12's headers (6.1): defined here
 * under our own names so newer headers cannot clash.  Values are the
 * Linux uapi ABI.
 */
#define WB_UFFD_FEATURE_WP_UNPOPULATED	(1ULL << 13)
#define WB_UFFD_FEATURE_WP_ASYNC	(1ULL << 15)
#define WB_UFFD_USER_MODE_ONLY		1
#define WB_USERFAULTFD_IOC_NEW		_IO(0xAA, 0x00)

#define WB_PAGE_IS_WRITTEN		(1ULL << 1)
#define WB_PM_SCAN_WP_MATCHING		(1ULL << 0)
#define WB_PM_SCAN_CHECK_WPASYNC	(1ULL << 1)

struct wb_page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

struct wb_pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};

_Static_assert(sizeof(struct wb_pm_scan_arg) == 96,
	       "struct pm_scan_arg is 96 bytes in the kernel ABI");
_Static_assert(sizeof(struct wb_page_region) == 24,
	       "struct page_region is 24 bytes in the kernel ABI");

#define WB_PAGEMAP_SCAN	_IOWR('f', 16, struct wb_pm_scan_arg)

/* Regions per PAGEMAP_SCAN call (24 bytes each). */
#define SCAN_VEC_LEN 256

struct uffd_state {
	int uffd;
	int pagemap;
	bool via_dev;		/* opened through /dev/userfaultfd */
	__u64 features;		/* requested from UFFDIO_API */
	struct wb_page_region vec[SCAN_VEC_LEN];
};

static struct uffd_state *st(const wbdev_t *w)
{
	return w->priv;
}

/* A new userfaultfd: the syscall first, then the device. */
static int new_uffd(const wbdev_t *w, bool *via_dev)
{
	int fd, dev, flags = O_CLOEXEC | O_NONBLOCK;
	int err;

	fd = (int)syscall(SYS_userfaultfd, flags | WB_UFFD_USER_MODE_ONLY);
	if (fd >= 0) {
		*via_dev = false;
		return fd;
	}
	err = errno;
	wbdev_log(w, "uffd: userfaultfd(UFFD_USER_MODE_ONLY): %s",
		  strerror(err));
	if (err == ENOSYS)
		return -ENODEV;
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		wbdev_log(w, "uffd: /dev/userfaultfd: %s", strerror(errno));
		return err == EPERM ? -EPERM : -ENODEV;
	}
	fd = ioctl(dev, WB_USERFAULTFD_IOC_NEW, flags | WB_UFFD_USER_MODE_ONLY);
	if (fd < 0)
		fd = ioctl(dev, WB_USERFAULTFD_IOC_NEW, flags);
	err = errno;
	close(dev);
	if (fd < 0) {
		wbdev_log(w, "uffd: USERFAULTFD_IOC_NEW: %s", strerror(err));
		return -ENODEV;
	}
	*via_dev = true;
	return fd;
}

/* A userfaultfd set up with the features we use. */
static int open_uffd(wbdev_t *w, struct uffd_state *s)
{
	struct uffdio_api api;
	int fd;

	fd = new_uffd(w, &s->via_dev);
	if (fd < 0)
		return fd;
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	api.features = s->features;
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int err = errno;

		wbdev_log(w, "uffd: UFFDIO_API: %s", strerror(err));
		close(fd);
		return err == EINVAL ? -ENODEV : -err;
	}
	s->uffd = fd;
	return 0;
}

/* Which features does this kernel offer?  (UFFDIO_API works once per fd.) */
static int probe_features(wbdev_t *w, __u64 *features)
{
	struct uffdio_api api;
	bool via_dev;
	int fd = new_uffd(w, &via_dev);

	if (fd < 0)
		return fd;
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		wbdev_log(w, "uffd: UFFDIO_API probe: %s", strerror(errno));
		close(fd);
		return -ENODEV;
	}
	close(fd);
	*features = api.features;
	return 0;
}

static int open_pagemap(wbdev_t *w, struct uffd_state *s)
{
	struct wb_pm_scan_arg arg;

	s->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (s->pagemap < 0) {
		wbdev_log(w, "uffd: /proc/self/pagemap: %s", strerror(errno));
		return -ENODEV;
	}
	/* An empty scan: ENOTTY on kernels without PAGEMAP_SCAN. */
	memset(&arg, 0, sizeof(arg));
	arg.size = sizeof(arg);
	arg.start = arg.end = w->page_size;
	if (ioctl(s->pagemap, WB_PAGEMAP_SCAN, &arg) < 0) {
		wbdev_log(w, "uffd: PAGEMAP_SCAN: %s (needs Linux >= 6.7)",
			  strerror(errno));
		close(s->pagemap);
		s->pagemap = -1;
		return -ENODEV;
	}
	return 0;
}

static int register_range(wbdev_t *w, uintptr_t start, size_t len)
{
	struct uffdio_register reg;

	memset(&reg, 0, sizeof(reg));
	reg.range.start = start;
	reg.range.len = len;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if (ioctl(st(w)->uffd, UFFDIO_REGISTER, &reg) < 0) {
		int err = errno;

		wbdev_log(w, "uffd: UFFDIO_REGISTER: %s", strerror(err));
		return -err;
	}
	if (!(reg.ioctls & (1ULL << _UFFDIO_WRITEPROTECT))) {
		wbdev_log(w, "uffd: UFFDIO_WRITEPROTECT not offered");
		return -ENODEV;
	}
	return 0;
}

static int uffd_open(wbdev_t *w)
{
	struct uffd_state *s;
	__u64 offered;
	int err;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->uffd = s->pagemap = -1;
	err = probe_features(w, &offered);
	if (err)
		goto fail;
	if (!(offered & WB_UFFD_FEATURE_WP_ASYNC)) {
		wbdev_log(w, "uffd: no UFFD_FEATURE_WP_ASYNC (needs Linux >= 6.7)");
		err = -ENODEV;
		goto fail;
	}
	/* Protecting never-touched pages needs WP_UNPOPULATED (6.5+). */
	s->features = WB_UFFD_FEATURE_WP_ASYNC |
		      (offered & WB_UFFD_FEATURE_WP_UNPOPULATED);
	err = open_uffd(w, s);
	if (err)
		goto fail;
	err = open_pagemap(w, s);
	if (err)
		goto fail;
	w->priv = s;
	return 0;
fail:
	if (s->uffd >= 0)
		close(s->uffd);
	free(s);
	return err;
}

static void uffd_close(wbdev_t *w)
{
	struct uffd_state *s = st(w);

	close(s->pagemap);
	close(s->uffd);
	free(s);
	w->priv = NULL;
}

static unsigned int uffd_caps(const wbdev_t *w)
{
	(void)w;
	return WBDEV_CAP_KERNEL_WRITES | WBDEV_CAP_COLLECT_REPROTECT |
	       WBDEV_CAP_FORK_TRACKING | WBDEV_CAP_UNPROTECT;
}

static int uffd_map(wbdev_t *w, void *hint, size_t len, void **addr)
{
	void *a;
	int err;

	a = mmap(hint, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return -errno;
	/* A huge page is written as a whole: keep reports per 4 KiB page. */
	madvise(a, len, MADV_NOHUGEPAGE);
	err = register_range(w, (uintptr_t)a, len);
	if (err) {
		munmap(a, len);
		return err;
	}
	*addr = a;
	return 0;
}

static int uffd_unmap(wbdev_t *w, void *addr, size_t len)
{
	(void)w;
	/* munmap drops the registration with the memory. */
	return munmap(addr, len) ? -errno : 0;
}

/* Scan [start, end) for written pages; n regions into s->vec. */
static int scan(wbdev_t *w, uintptr_t start, uintptr_t end, __u64 flags,
		size_t max_pages, __u64 *walk_end)
{
	struct uffd_state *s = st(w);
	struct wb_pm_scan_arg arg;
	int n;

	memset(&arg, 0, sizeof(arg));
	arg.size = sizeof(arg);
	arg.flags = flags | WB_PM_SCAN_CHECK_WPASYNC;
	arg.start = start;
	arg.end = end;
	arg.vec = (uintptr_t)s->vec;
	arg.vec_len = SCAN_VEC_LEN;
	arg.max_pages = max_pages;
	arg.category_mask = WB_PAGE_IS_WRITTEN;
	arg.return_mask = WB_PAGE_IS_WRITTEN;
	w->stats.collect_calls++;
	n = ioctl(s->pagemap, WB_PAGEMAP_SCAN, &arg);
	if (n < 0)
		return -errno;
	*walk_end = arg.walk_end;
	return n;
}

/*
 * Where the next scan resumes.  walk_end is where the kernel stopped, but
 * it has been seen (6.18, more than 512 regions) to lag behind regions
 * already returned: never resume before the end of the last region.
 */
static uintptr_t resume_point(const struct uffd_state *s, int n,
			      __u64 walk_end)
{
	uintptr_t next = (uintptr_t)walk_end;

	if (n > 0 && s->vec[n - 1].end > next)
		next = (uintptr_t)s->vec[n - 1].end;
	return next;
}

static int uffd_discard(wbdev_t *w, void *addr, size_t len)
{
	(void)w;
	/*
	 * MADV_DONTNEED empties the page table entries; an empty entry
	 * without a write-protect marker reads as written to PAGEMAP_SCAN,
	 * so every discarded page is reported by the next collection (a
	 * superset of the pages written before the discard), and the next
	 * re-protecting collection installs markers again.
	 */
	return madvise(addr, len, MADV_DONTNEED) ? -errno : 0;
}

/* Set (mode UFFDIO_WRITEPROTECT_MODE_WP) or clear (0) write-protection. */
static int wp_set(wbdev_t *w, uintptr_t start, uintptr_t end, __u64 mode)
{
	struct uffdio_writeprotect wp;

	memset(&wp, 0, sizeof(wp));
	wp.range.start = start;
	wp.range.len = end - start;
	wp.mode = mode;
	if (ioctl(st(w)->uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
		return -errno;
	return 0;
}

static int wp_range(wbdev_t *w, uintptr_t start, uintptr_t end)
{
	w->stats.protect_calls++;
	return wp_set(w, start, end, UFFDIO_WRITEPROTECT_MODE_WP);
}

/*
 * A page without write-protection (and an empty entry without a marker)
 * reads as written to PAGEMAP_SCAN: clearing the protection is all it
 * takes for the whole range to be reported by the next collection.
 */
static int uffd_unprotect(wbdev_t *w, void *addr, size_t len)
{
	w->stats.unprotect_calls++;
	return wp_set(w, (uintptr_t)addr, (uintptr_t)addr + len, 0);
}

static int uffd_protect(wbdev_t *w, void *addr, size_t len)
{
	return wp_range(w, (uintptr_t)addr, (uintptr_t)addr + len);
}

static int uffd_protect_pages(wbdev_t *w, void *const *addrs, size_t n)
{
	uintptr_t mask = ~(uintptr_t)(w->page_size - 1);
	uintptr_t rs = (uintptr_t)addrs[0] & mask, re = rs + w->page_size;
	size_t i;
	int err;

	/* One ioctl per run of consecutive pages (ascending input). */
	for (i = 1; i < n; i++) {
		uintptr_t p = (uintptr_t)addrs[i] & mask;

		if (p >= rs && p < re)
			continue;
		if (p == re) {
			re += w->page_size;
			continue;
		}
		err = wp_range(w, rs, re);
		if (err)
			return err;
		rs = p;
		re = p + w->page_size;
	}
	return wp_range(w, rs, re);
}

static int uffd_collect(wbdev_t *w, struct wbdev_collect *c)
{
	struct uffd_state *s = st(w);
	uintptr_t pos = c->cursor;
	uintptr_t end = (uintptr_t)c->start + c->len;
	__u64 flags = (c->flags & WBDEV_COLLECT_REPROTECT) ?
		      WB_PM_SCAN_WP_MATCHING : 0;

	while (c->count < c->max) {
		uintptr_t rs, re, next;
		__u64 walk_end = 0;
		int i, n;

		if (wbdev_next_tracked_run(w, pos, end, &rs, &re)) {
			pos = end;
			break;
		}
		/*
		 * max_pages bounds what the kernel reports and re-protects,
		 * so a short buffer never loses a page.
		 */
		n = scan(w, rs, re, flags, c->max - c->count, &walk_end);
		if (n < 0) {
			c->cursor = rs;
			/* Hand over what was already re-protected; the
			 * error comes back on the next call. */
			return c->count ? 1 : n;
		}
		for (i = 0; i < n; i++) {
			uintptr_t p;

			for (p = s->vec[i].start; p < s->vec[i].end;
			     p += w->page_size)
				c->pages[c->count++] = (void *)p;
		}
		next = resume_point(s, n, walk_end);
		if (next <= rs) {
			c->cursor = rs;
			return -EIO;	/* no progress: do not loop */
		}
		pos = next;
	}
	c->cursor = pos < end ? pos : end;
	return c->cursor < end ? 1 : 0;
}

static int uffd_fork_child(wbdev_t *w)
{
	struct uffd_state *s = st(w);
	uintptr_t pos = 0, rs, re;
	int err;

	/*
	 * The inherited userfaultfd and pagemap fds act on the parent's mm:
	 * using them would change the parent's tracking.  Closing our copies
	 * leaves the parent's alone.  The child's VMAs lost their
	 * registration, so every present page reads as written: the first
	 * collection reports the whole inherited heap (conservative).
	 */
	close(s->uffd);
	close(s->pagemap);
	s->uffd = s->pagemap = -1;
	err = open_uffd(w, s);
	if (err)
		return err;
	err = open_pagemap(w, s);
	if (err)
		return err;
	while (!wbdev_next_tracked_run(w, pos, UINTPTR_MAX, &rs, &re)) {
		err = register_range(w, rs, re - rs);
		if (err)
			return err;
		pos = re;
	}
	return 0;
}

const struct wbdev_backend_ops wbdev_uffd_ops = {
	.name = "uffd",
	.id = WBDEV_BACKEND_UFFD,
	.open = uffd_open,
	.close = uffd_close,
	.caps = uffd_caps,
	.map = uffd_map,
	.unmap = uffd_unmap,
	.discard = uffd_discard,
	.protect = uffd_protect,
	.protect_pages = uffd_protect_pages,
	.unprotect = uffd_unprotect,
	.collect = uffd_collect,
	.fork_child = uffd_fork_child,
};
