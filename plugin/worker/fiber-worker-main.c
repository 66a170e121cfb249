#include <fiber.h>
int main (int argc, char **argv) { return fiber_init (&argc, &argv, NULL) ? 0 : 1; }
