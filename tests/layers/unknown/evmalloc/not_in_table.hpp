// Fixture for the layer check: a header missing from the layer table.
#pragma once

#include "config.hpp"
