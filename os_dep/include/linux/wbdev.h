/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * wbdev: write-barrier device for garbage collectors (/dev/wbdev).
 *
 * User-space interface of the wbdev kernel module.  Semantics (see also
 * wbdev(4)):
 *
 * open()   Every open gives a new context.  A context is bound to the
 *          address space (mm) of the process that opened it; read, write,
 *          mmap and most ioctls from another address space fail with EPERM
 *          (the only exception is WBDEV_IOC_FORK_CLAIM, see below).
 *
 * mmap()   MAP_SHARED, PROT_READ|PROT_WRITE, offset 0: fresh zero-filled
 *          memory, like /dev/zero; every mmap call is new memory (one
 *          shmem file per mapping: swappable, charged to the caller's
 *          memory cgroup, freed on munmap/exit).  MAP_PRIVATE fails with
 *          EINVAL, a non-zero offset with EINVAL.  New memory is tracked
 *          from its first fault: a write to a page that has no writable
 *          page table entry is recorded.
 *          Partial munmap and mprotect work (the unmapped part is freed and
 *          dropped from the log).  mremap that moves or grows a mapping
 *          fails (EINVAL / EFAULT); shrinking works like a partial munmap.
 *          madvise(MADV_REMOVE) frees a range, which reads back as zero;
 *          pages written before it and not yet collected stay in the log.
 *          A mapping over 1 TiB fails with ENOMEM, as does one whose log
 *          bitmap (one bit per page, charged to the memory cgroup) does
 *          not fit.  remap_file_pages() fails with ENODEV.
 *          Huge pages: the memory is never PMD-mapped in normal use (a
 *          private huge=never tmpfs, VM_NOHUGEPAGE), whatever
 *          shmem_enabled says; if a huge folio appears anyway
 *          (shmem_enabled=force, MADV_HUGEPAGE + MADV_COLLAPSE) the first
 *          write to one of its pages logs all of its pages.
 *          Pinned pages: a page the kernel may write without a fault
 *          (a get_user_pages() pin or reference: O_DIRECT, AIO,
 *          process_vm_writev, /proc/PID/mem; any reference beyond the
 *          page cache's and the page tables' counts) is reported by every
 *          collection with re-protection and by write/WBDEV_IOC_PROTECT
 *          stays logged, until the reference is gone: such a write is
 *          never lost (a long-term pin keeps its pages reported;
 *          >= 6.5 the kernel refuses long-term writable pins of
 *          write-notify mappings such as this one).
 *
 * write()  The buffer is an array of __u64 user addresses.  Each names the
 *          page that holds it (unaligned addresses are fine) in one of this
 *          context's mappings; those pages are write-protected.  The byte
 *          count must be a multiple of 8 (else EINVAL).  Entries are applied
 *          in order; at the first entry that is not inside one of this
 *          context's mappings (NULL, unmapped, another context's memory,
 *          kernel, tagged or non-canonical addresses) processing stops and
 *          the byte count of the applied prefix is returned, or EFAULT if
 *          it is the first entry.  A fatal signal stops the same way (EINTR
 *          if nothing was applied).  Protecting never drops pending log
 *          entries.
 *
 *          The first write to a protected page, by any thread of the
 *          process or by the kernel on its behalf (read(2) into the page,
 *          recv, ...), is recorded in the context's log, the page is made
 *          writable and the access restarted: no signal, no VMA split.
 *
 * read()   Fills the buffer with __u64 page-aligned addresses (in the
 *          caller's address space, ascending) of pages written since they
 *          were last returned, each once, and removes them from the log;
 *          the pages stay writable.  The length must be a multiple of 8 and
 *          at least 8 (else EINVAL).  A short buffer returns a prefix, the
 *          rest stays for the next read.  Empty log: returns 0.  If the
 *          buffer cannot be written (EFAULT) the entries stay in the log.
 *
 * poll()   EPOLLIN | EPOLLRDNORM while the log is non-empty.
 *
 * unprotect (WBDEV_IOC_UNPROTECT, version 2) makes a page-aligned range of
 *          this context's memory writable ahead of writes the caller knows
 *          are coming, so that they take no fault, and logs every page of
 *          it as written now: the next read or collection reports the whole
 *          range, written or not (conservative), and a write is never
 *          missed.  The kernel takes one write fault per resident page
 *          on the process's behalf; a page not in memory (never touched,
 *          or swapped out) is only logged, and its first write takes the
 *          fault that brings it in, as without wbdev.  Protecting the range again (write,
 *          WBDEV_IOC_PROTECT, COLLECT with WBDEV_IOC_COLLECT_REPROTECT)
 *          resumes tracking.  Errors, nothing changed: EINVAL if start or
 *          len is not page aligned, len is 0, the range wraps or ends above
 *          the user address space; EFAULT if any part of it is not this
 *          context's memory (unmapped, another context's, other memory,
 *          a fork stub); EACCES if part of it is mapped without write
 *          permission (mprotect).  Errors after some pages were done
 *          (those stay writable and logged, so nothing is lost): EINTR on
 *          a fatal signal, ENOMEM when memory runs out, EFAULT
 *          if another thread unmaps part of the range meanwhile.
 *
 * fork     Memory is never shared with a child.  By default
 *          (WBDEV_FORK_AUTO) a child gets its heap as /dev/zero memory
 *          would: fork() copies the parent's pages (as with
 *          WBDEV_FORK_COPY below) and the child's first access to a
 *          mapping, by itself or by the kernel on its behalf, maps its
 *          private copy in place; each copied page is in the child's log.
 *          Through the inherited fd the child then acts on a context of
 *          its own (one per open file and address space).  Until that
 *          first access the child's mapping is a stub (below); an access
 *          by another process (process_vm_readv, ptrace) sees a stub.
 *          With WBDEV_FORK_STUB a child inherits each mapping as an
 *          inaccessible stub (a read raises SIGBUS, a write SIGSEGV; it
 *          cannot be made writable, split, moved or punched), and its
 *          calls through the inherited fd fail with EPERM.  When the
 *          parent armed fork copying (WBDEV_IOC_SET_FORK_MODE,
 *          WBDEV_FORK_COPY) before fork(), the module write-protects the parent's pages and
 *          copies them into new memory for the child while fork() holds the
 *          parent's mmap lock, so the copy is exactly the memory at the
 *          fork instant even while other parent threads write (they wait
 *          for the copy).  The child then opens /dev/wbdev again, claims
 *          the copies with WBDEV_IOC_FORK_CLAIM (given the inherited
 *          fd, it returns the stubs' ranges) and maps the new fd with
 *          MAP_FIXED at each range; that mapping holds the copy, and every copied page is in
 *          the new context's log (conservative).  Cost: fork time grows
 *          linearly with the resident size of the armed context.
 */
#ifndef _UAPI_LINUX_WBDEV_H
#define _UAPI_LINUX_WBDEV_H

#include <linux/types.h>
#include <linux/ioctl.h>

/*
 * Versions only add to the interface: version 2 added WBDEV_IOC_UNPROTECT
 * (version 1 modules answer it with ENOTTY).
 */
#define WBDEV_VERSION		2

/* A page-aligned range of user addresses. */
struct wbdev_range {
	__u64 start;
	__u64 len;
};

/* WBDEV_IOC_COLLECT flags. */
#define WBDEV_IOC_COLLECT_REPROTECT	0x1	/* write-protect returned pages */

/*
 * Collect the log entries of pages inside [start, start + len) (len 0: all
 * memory of the context) into buf (max entries of __u64, ascending).
 * Out: count entries stored; next is 0 when the range was scanned to its
 * end, else the address to resume from (the buffer filled up; entries not
 * returned stay in the log).
 */
struct wbdev_collect_arg {
	__u64 start;
	__u64 len;
	__u64 buf;
	__u64 max;
	__u32 flags;
	__u32 pad;		/* must be 0 */
	__u64 count;
	__u64 next;
};

struct wbdev_info {
	__u32 version;		/* WBDEV_VERSION */
	__u32 features;		/* WBDEV_FEAT_* */
	__u64 mappings;		/* live mappings (areas) of this context */
	__u64 mapped_pages;	/* pages of those mappings */
	__u64 dirty_pages;	/* pages in the log now */
	__u64 recorded;		/* first writes recorded since open */
	__u64 protected_pages;	/* pages write-protected since open */
	__u64 fork_copies;	/* mappings copied for fork children */
};

#define WBDEV_FEAT_KERNEL_WRITES	0x1
#define WBDEV_FEAT_COLLECT_REPROTECT	0x2
#define WBDEV_FEAT_FORK_COPY		0x4
#define WBDEV_FEAT_FORK_AUTO		0x8	/* WBDEV_FORK_AUTO, the default */

/* WBDEV_IOC_SET_FORK_MODE values. */
#define WBDEV_FORK_STUB		0	/* child gets SIGBUS stubs */
#define WBDEV_FORK_COPY		1	/* child gets a claimable copy */
#define WBDEV_FORK_AUTO		2	/* child gets its copy (default) */

#define WBDEV_IOC_MAGIC		0xB7
/* Write-protect every page of a range (all of it must be this context's). */
#define WBDEV_IOC_PROTECT	_IOW(WBDEV_IOC_MAGIC, 1, struct wbdev_range)
/* Collect (and with WBDEV_IOC_COLLECT_REPROTECT re-protect) in one call. */
#define WBDEV_IOC_COLLECT	_IOWR(WBDEV_IOC_MAGIC, 2, struct wbdev_collect_arg)
#define WBDEV_IOC_INFO		_IOR(WBDEV_IOC_MAGIC, 3, struct wbdev_info)
/* Free a range (reads back as zero), like madvise(MADV_REMOVE). */
#define WBDEV_IOC_DISCARD	_IOW(WBDEV_IOC_MAGIC, 4, struct wbdev_range)
/* Argument: WBDEV_FORK_STUB, _COPY or _AUTO (by value). */
#define WBDEV_IOC_SET_FORK_MODE	_IO(WBDEV_IOC_MAGIC, 5)
/*
 * In a fork child, on a fresh context: take over the copies made at fork
 * from the context of the inherited fd.  Every stub of this process that
 * holds an unclaimed copy of that context is counted; if there are more
 * than max, count is set and the call fails with ENOSPC without claiming
 * anything.  Otherwise the copies are claimed, their ranges (stub address
 * and length) stored in ranges[0..count) and the call returns 0.  Each
 * range must then be mapped from this context with MAP_FIXED at exactly
 * that address and length to get the copy.
 */
struct wbdev_fork_claim {
	__s32 fd;		/* inherited fd of the parent's context */
	__u32 pad;		/* must be 0 */
	__u64 ranges;		/* user pointer to struct wbdev_range[max] */
	__u64 max;
	__u64 count;		/* out */
};

#define WBDEV_IOC_FORK_CLAIM	_IOWR(WBDEV_IOC_MAGIC, 6, struct wbdev_fork_claim)

/*
 * Version 2.  Make every page of a range writable and log it as written
 * (see "unprotect" above); all of the range must be this context's
 * writable memory.
 */
#define WBDEV_IOC_UNPROTECT	_IOW(WBDEV_IOC_MAGIC, 7, struct wbdev_range)

#endif /* _UAPI_LINUX_WBDEV_H */
