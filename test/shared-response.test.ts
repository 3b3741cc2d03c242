// A shared response (the tenant cache's entries) is frozen all the way down and encoded once per
// method; any other response is encoded on every call, so a mutated object is never answered stale.
import assert from "node:assert/strict";
import { Tenant, TenantServiceService } from "../gen/qod/v1/tenant";
import { isSharedResponse, sharedResponse } from "../src/call/shared-response";
import { loadRegistry } from "../src/gateway/transcode";
import { callDefinition } from "../src/server/call-definition";
import { readDescriptor } from "../src/server/reflection";
import { requestScreens } from "../src/server/request-screen";

describe("shared responses", () => {
  const tenant = () => Tenant.fromPartial({ name: "acme", pools: ["bi"], authConfig: { issuer: "https://x" }, createTime: new Date(0) });

  it("are frozen deeply and marked", () => {
    const shared = sharedResponse(tenant());
    assert.ok(isSharedResponse(shared));
    assert.ok(Object.isFrozen(shared) && Object.isFrozen(shared.pools) && Object.isFrozen(shared.authConfig));
    assert.throws(() => (shared.pools).push("x"), TypeError);
    assert.equal(isSharedResponse(tenant()), false);
    assert.equal(isSharedResponse(Object.freeze(tenant())), false, "frozen is not enough: only sharedResponse marks");
  });

  it("are encoded once per method; other responses on every call", () => {
    let encodings = 0;
    const counting = {
      getTenant: {
        ...TenantServiceService.getTenant,
        responseSerialize: (value: Tenant) => {
          encodings++;
          return TenantServiceService.getTenant.responseSerialize(value);
        },
      },
    };
    const { getTenant } = callDefinition(counting, requestScreens(loadRegistry(readDescriptor())));
    const shared = sharedResponse(tenant());
    const first = getTenant.responseSerialize(shared);
    assert.ok(getTenant.responseSerialize(shared).equals(first));
    assert.equal(encodings, 1);
    const plain = tenant();
    getTenant.responseSerialize(plain);
    plain.displayName = "changed";
    assert.equal(Tenant.decode(getTenant.responseSerialize(plain)).displayName, "changed");
    assert.equal(encodings, 3);
  });
});
