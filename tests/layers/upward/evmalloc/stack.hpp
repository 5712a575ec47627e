// Fixture for the layer check: a component that includes the frame layer above it.
#pragma once

#include "frame_pool.hpp"
