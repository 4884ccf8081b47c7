#pragma once
// What the admin API shows: the /admin/status document and the /metrics text.
// Thread-safety: call from the admin thread only, as admin_api.hpp; both read
// the store's current snapshot and take the proxy's counters through the
// AdminContext.

#include <nlohmann/json.hpp>
#include <string>

#include "figshift/admin.hpp"

namespace figshift::admin {

// GET /admin/status (docs/admin-api.md): the split now, ramp, plan, guard,
// upstreams, routes, request counts, readiness and, for a shared store, its link.
nlohmann::json status_json(AdminContext& context);

// GET /metrics: the Prometheus text of the counters (render_prometheus), then
// the shared store's series and the guard's, when there are any.
std::string metrics_text(AdminContext& context);

}  // namespace figshift::admin
