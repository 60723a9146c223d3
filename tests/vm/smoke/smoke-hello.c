/* Static test binary for the VM smoke test: reports the running kernel
 * release and that it could write to /tmp, which the host checks. */
#include <stdio.h>
#include <sys/utsname.h>

int main(void)
{
	struct utsname u;
	FILE *f;

	if (uname(&u) != 0) {
		perror("uname");
		return 1;
	}
	f = fopen("/tmp/smoke-hello.txt", "w");
	if (!f || fputs("ok\n", f) == EOF || fclose(f) != 0) {
		perror("/tmp/smoke-hello.txt");
		return 1;
	}
	printf("smoke-hello: running on %s\n", u.release);
	return 0;
}
