/*
 * syscall_write - read(2) into heap memory that is tracked and clean
 * must do what GC_incremental_protection_needs() says.
 *
 * The answer tells a program whether a system call may write to the
 * heap.  With the wbdev VDB it is GC_PROTECTS_NONE (the kernel's write
 * is recorded), and the read must succeed.  A CHECK_WBDEV_VDB build also
 * protects the heap with mprotect, so it must answer that pointer-free
 * objects are protected too, and then such a read fails with EFAULT as
 * it would with MPROTECT_VDB.  WBDEV_TEST_EXPECT_PROTECTED=1 says which
 * of the two answers the library under test must give.
 */
#include <errno.h>

#include "testutil.h"

/* Larger than the initial heap, which was mapped before the incremental
 * mode was on and is not tracked: the object lies in tracked memory. */
#define OBJ_BYTES (4 << 20)

int main(void)
{
	const char *want = getenv("WBDEV_TEST_EXPECT_PROTECTED");
	int expect_protected = want && strcmp(want, "1") == 0;
	int needs, fds[2];
	char *obj;
	ssize_t n;

	test_enable_incremental();
	needs = GC_incremental_protection_needs();
	printf("syscall_write: GC_incremental_protection_needs() = %d\n", needs);
	if (expect_protected)
		CHECK(needs == (GC_PROTECTS_POINTER_HEAP |
				GC_PROTECTS_PTRFREE_HEAP),
		      "answer %d, expected the whole heap protected", needs);
	else
		CHECK(needs == GC_PROTECTS_NONE,
		      "answer %d, expected GC_PROTECTS_NONE", needs);

	/* A large pointer-free object, kept alive. */
	obj = GC_MALLOC_ATOMIC(OBJ_BYTES);
	CHECK(obj, "out of memory");
	memset(obj, 'a', OBJ_BYTES);
	/* Collect: the dirty bits are read and the heap protected again;
	 * nothing writes to obj afterwards. */
	GC_gcollect();
	CHECK(pipe(fds) == 0, "pipe: %s", strerror(errno));
	CHECK(write(fds[1], "kernel", 6) == 6, "write: %s", strerror(errno));
	n = read(fds[0], obj + OBJ_BYTES / 2, 6);
	if (needs & GC_PROTECTS_PTRFREE_HEAP) {
		CHECK(n == -1 && errno == EFAULT,
		      "read into a protected object returned %zd (%s),"
		      " expected EFAULT", n, n < 0 ? strerror(errno) : "ok");
	} else {
		CHECK(n == 6, "read into the heap: %zd (%s)", n,
		      n < 0 ? strerror(errno) : "short");
		CHECK(memcmp(obj + OBJ_BYTES / 2, "kernel", 6) == 0,
		      "the read data is not in the object");
	}
	GC_gcollect();
	CHECK(obj[0] == 'a' && obj[OBJ_BYTES - 1] == 'a', "object damaged");
	printf("syscall_write: ok, read(2) %s\n",
	       n < 0 ? "failed with EFAULT as announced" : "wrote the heap");
	return 0;
}
