/* The seed's "no-op binary": static, so that exec cost is the kernel's, not ld.so's. */
int main(void) { return 0; }
