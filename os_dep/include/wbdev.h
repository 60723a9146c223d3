/* SPDX-License-Identifier: MIT */
/*
 * wbdev.h - write-barrier device adapter: one C API over several backends.
 *
 * The 2003 pseudo-device design (Zack Weinberg): tracked memory is
 * zero-filled anonymous-like memory; protecting a page makes the next write
 * to it recorded by the kernel (no signal reaches the process, the access is
 * restarted); collecting returns the pages written since they were last
 * collected.
 *
 * Backends (chosen at run time by wbdev_open):
 *   kmod - the wbdev kernel module, /dev/wbdev (os_dep/kmod);
 *   uffd - Linux >= 6.7 userfaultfd async write-protect + PAGEMAP_SCAN.
 *          Needs no privilege: it asks for UFFD_USER_MODE_ONLY, which the
 *          kernel grants to any user whatever vm.unprivileged_userfaultfd
 *          says; if userfaultfd(2) is refused (seccomp) it tries
 *          /dev/userfaultfd (read-write access needed, root-only by
 *          default).  Either way writes made by the kernel (read(2) into
 *          tracked memory) are recorded: async write-protect faults are
 *          resolved in the kernel, also from kernel mode.
 *
 * Conventions:
 * - Every function returning int returns 0 (or a documented positive value)
 *   on success and a negative errno value on failure.  Nothing is printed
 *   and nothing aborts; diagnostics go only to the caller's log hook.
 * - Addresses and lengths are byte addresses; ranges must be page aligned
 *   (wbdev_page_size) unless stated otherwise.
 * - Thread safety: writes to tracked memory may come from any thread and
 *   from the kernel at any time, also during wbdev_collect and
 *   wbdev_protect: a write is either reported by the collection running
 *   or left for the next one, never lost.  Calls on one handle may come
 *   from any thread: the handle serialises them with an internal mutex
 *   (error-checking: a call from the thread inside the
 *   wbdev_fork_prepare/parent window returns -EDEADLK).  A resumable
 *   collection (one struct wbdev_collect) belongs to one thread at a time.
 * - Bad handles: NULL gives -EBADF (or a neutral value from the getters);
 *   a closed handle is caught (-EBADF) while its freed memory has not been
 *   reused, which covers a double close in practice; any other use after
 *   close is a caller bug the library cannot detect.
 * - No global state: everything lives in the handle.
 */
#ifndef WBDEV_H
#define WBDEV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WBDEV_API_VERSION 1

typedef struct wbdev wbdev_t;

/* Backend identifiers. */
enum wbdev_backend_id {
	WBDEV_BACKEND_AUTO = 0,	/* kmod if /dev/wbdev opens, else uffd */
	WBDEV_BACKEND_KMOD = 1,
	WBDEV_BACKEND_UFFD = 2
};

/* Capability bits returned by wbdev_caps(). */
#define WBDEV_CAP_KERNEL_WRITES	0x1u	/* writes made by the kernel on the
					   process's behalf (read(2) into
					   tracked memory...) are recorded */
#define WBDEV_CAP_COLLECT_REPROTECT 0x2u /* collect+reprotect is one call */
#define WBDEV_CAP_FORK_TRACKING	0x4u	/* a fork child keeps its memory and
					   keeps tracking after
					   wbdev_fork_child() */
#define WBDEV_CAP_UNPROTECT	0x8u	/* wbdev_unprotect() is cheap: a
					   page-table update, not a fault
					   per page (uffd); without it the
					   call may still work (kmod) */

typedef void (*wbdev_log_fn)(void *arg, const char *msg);

struct wbdev_options {
	/*
	 * Backend to use.  WBDEV_BACKEND_AUTO: kmod, else uffd.  The
	 * adapter reads no environment variable; a caller that lets users
	 * choose reads its own (bdwgc: GC_WBDEV_BACKEND).
	 */
	enum wbdev_backend_id backend;
	/* Optional diagnostics hook (why a backend was refused...). */
	wbdev_log_fn log;
	void *log_arg;
};

/*
 * Open a handle.  opts may be NULL (auto, no log).  On failure *out is
 * NULL and the result is -ENODEV when no backend works here (the caller
 * should fall back to another write barrier), -EINVAL for a bad option.
 */
int wbdev_open(wbdev_t **out, const struct wbdev_options *opts);

/* Close a handle; unmaps every mapping still made through it. */
int wbdev_close(wbdev_t *w);

/* Which backend runs: "kmod" or "uffd"; and its id. */
const char *wbdev_backend_name(const wbdev_t *w);
enum wbdev_backend_id wbdev_backend(const wbdev_t *w);

/* WBDEV_CAP_* bits for the backend in use. */
unsigned int wbdev_caps(const wbdev_t *w);

/* Page size used for tracking (bytes). */
size_t wbdev_page_size(const wbdev_t *w);

/*
 * Map len bytes (a multiple of the page size) of tracked, zero-filled,
 * read-write memory.  If hint is not NULL it is only a hint (no MAP_FIXED).
 * New memory is not protected: until it is protected, whether its pages
 * are reported is backend-defined (uffd reports all of them, written or
 * not), so protect it (or collect with WBDEV_COLLECT_REPROTECT) to start
 * tracking.
 */
int wbdev_map(wbdev_t *w, void *hint, size_t len, void **addr);

/*
 * Unmap a page-aligned range lying within memory mapped by wbdev_map
 * (whole mappings or parts of them).  -EINVAL if any part of the range was
 * not mapped through this handle; nothing is changed then.
 */
int wbdev_unmap(wbdev_t *w, void *addr, size_t len);

/*
 * Discard a range: its memory is freed and reads back as zero.  The range
 * stays mapped and tracked.  Pages written before the discard and not yet
 * collected are still reported by the next collection; the backend may
 * report other discarded pages too (uffd reports the whole range once).
 */
int wbdev_discard(wbdev_t *w, void *addr, size_t len);

/*
 * Write-protect (start tracking) a page-aligned range.  Writes made to it
 * before and not yet collected may still be reported by the next
 * collection: kmod keeps them (as in the 2003 design only a collection
 * clears the log), uffd forgets them.
 */
int wbdev_protect(wbdev_t *w, void *addr, size_t len);

/*
 * Write-protect the pages holding each of n addresses (any address inside
 * a page names that page).  All entries are validated first: -EINVAL (or
 * -EFAULT) and nothing is changed if one is not in tracked memory.
 */
int wbdev_protect_pages(wbdev_t *w, void *const *addrs, size_t n);

/*
 * Stop protecting a page-aligned range of tracked memory ahead of writes
 * the caller knows are coming (a GC about to sweep and reuse blocks), so
 * that they cost no fault: the whole range counts as written now and the
 * next collection reports every page of it, so nothing can be missed;
 * protect it again (or collect with WBDEV_COLLECT_REPROTECT) to resume
 * tracking.  uffd clears the write-protection of the range in one
 * system call (WBDEV_CAP_UNPROTECT: cheap enough to call on memory that
 * may not be written); kmod has the kernel take the write faults of its
 * resident pages in one call, which saves the exceptions but costs about
 * as much as the faults, so it does not advertise the capability.
 * Neither allocates memory: the first write to a page not in memory
 * still takes the fault that brings it in.  -ENOTSUP if the backend
 * cannot (a module older than version 2): nothing is changed then, and
 * the range simply stays protected.
 */
int wbdev_unprotect(wbdev_t *w, void *addr, size_t len);

/* Flags for struct wbdev_collect. */
#define WBDEV_COLLECT_REPROTECT 0x1u	/* protect the returned pages again */

/*
 * Testing aid: with the environment variable WBDEV_TEST_FAIL_COLLECT=N
 * (read by wbdev_open), the N-th wbdev_collect call on the handle fails
 * with -EIO and changes nothing, as when a backend loses tracking; it
 * lets a caller's recovery path be tested.  Unset or invalid: off.
 */
struct wbdev_collect {
	/* In: range to scan; start NULL and len 0 mean all tracked memory.
	 * Collection costs O(range) at most: ask only for what you need. */
	void *start;
	size_t len;
	unsigned int flags;	/* WBDEV_COLLECT_* */
	void **pages;		/* In: caller buffer of max entries */
	size_t max;
	/* Out: number of page addresses stored (page aligned, ascending
	 * within one call). */
	size_t count;
	/* Internal resume point; set to 0 before the first call of a
	 * collection and leave alone between calls of the same one. */
	uintptr_t cursor;
};

/*
 * Collect pages written since they were last collected with
 * WBDEV_COLLECT_REPROTECT (or since they were protected).  Within one
 * collection (the calls from cursor 0 until 0 is returned) each page is
 * returned at most once.  Returns 0 when the range is exhausted, 1 when
 * the buffer filled up and more pages may remain: call again with the
 * same struct (nothing is ever lost; other fields unchanged).
 * The range (start, len) must be page aligned; it may include untracked
 * gaps, which are skipped; only the tracked memory inside it is scanned.
 * With WBDEV_COLLECT_REPROTECT the returned pages are protected again in
 * the same step (a write racing with the collection is either reported
 * now or recorded for the next collection).  Without it a returned page
 * may be returned again by later collections until it is protected
 * (with uffd it is).
 * Errors: -EINVAL for a NULL buffer, max 0, unknown flags, unaligned
 * range or a cursor outside it; count is 0 then.
 */
int wbdev_collect(wbdev_t *w, struct wbdev_collect *c);

/*
 * Fork support.  Call wbdev_fork_prepare() in the parent just before
 * fork(), then wbdev_fork_parent() in the parent or wbdev_fork_child() in
 * the child just after (pthread_atfork order; a GC's atfork hooks).  After
 * wbdev_fork_child() the child owns a private copy of every mapping
 * holding exactly the parent's memory at the fork, tracked by the child's
 * own handle, with all of it reported as written (conservative) unless
 * the backend says otherwise.  The parent keeps tracking: nothing it wrote
 * is lost, though a backend may report more of its pages once after a
 * fork (kmod does).  Returns -ENOTSUP if this backend cannot
 * keep tracking in the child; the memory is still private and correct then.
 */
int wbdev_fork_prepare(wbdev_t *w);
int wbdev_fork_parent(wbdev_t *w);
int wbdev_fork_child(wbdev_t *w);

/* Counters for diagnostics and benchmarks. */
struct wbdev_stats {
	uint64_t mapped_bytes;
	uint64_t protect_calls;		/* system calls made to protect */
	uint64_t collect_calls;		/* system calls made to collect */
	uint64_t pages_reported;
	uint64_t unprotect_calls;	/* system calls made to unprotect */
};
int wbdev_get_stats(const wbdev_t *w, struct wbdev_stats *st);

/* Static string for a negative errno returned by this library. */
const char *wbdev_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* WBDEV_H */
