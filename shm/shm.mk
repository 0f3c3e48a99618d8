# shm/: the segment definition, compiled into libhakmem, hakctl and hakmemd.
# -ffunction-sections: for libhakmem's hot/warm/cold split (lib/hak_cold.py).
SHM_SRCS := shm/shm_tables.c shm/shm_create.c shm/shm_validate.c shm/shm_attach.c shm/shm_status.c shm/shm_access.c \
            shm/shm_lease.c shm/shm_sum.c
SHM_OBJS := $(SHM_SRCS:.c=.o)
SHM_LIB  := shm/libhakshm.a

$(SHM_LIB): $(SHM_OBJS)
	$(AR) rcs $@ $^

shm/%.o: shm/%.c shm/hakmem_shm.h shm/shm_private.h
	$(CC) $(CFLAGS) -fvisibility=hidden -ffunction-sections -c -o $@ $<

ALL_TARGETS += $(SHM_LIB)
CLEAN += $(SHM_OBJS) $(SHM_LIB)

# shm tests that need the library (the generic tests/bin/t_% rule does not link it)
tests/bin/t_shm_live: tests/t_shm_live.c $(SHM_LIB) tests/testutil.h
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -Itests -o $@ $< $(SHM_LIB) $(LDLIBS)
tests/bin/t_api_realloc_grow: tests/t_api_realloc_grow.c $(SHM_LIB) tests/testutil.h
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -Itests -o $@ $< $(SHM_LIB) $(LDLIBS)
tests/bin/t_shm_gc: tests/t_shm_gc.c $(SHM_LIB) tests/testutil.h
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -Itests -o $@ $< $(SHM_LIB) $(LDLIBS)
TEST_DEPS += tests/bin/t_shm_live tests/bin/t_api_realloc_grow tests/bin/t_shm_gc
CLEAN += tests/bin/t_shm_live tests/bin/t_api_realloc_grow tests/bin/t_shm_gc
