/* The binary builds and the harness counts. */
#include "tests/unit/test.h"
#include "model/net.h"

int main(void)
{
    TEST_BEGIN("net_constants");
    CHECK(NET_NUM_PARAMS == 93322, "NET_NUM_PARAMS = %d", NET_NUM_PARAMS);
    CHECK(NET_IN_PIXELS == 784, "pixels");
    TEST_END();
    TEST_EXIT();
}
