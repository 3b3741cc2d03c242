// The columns a table shows for each resource; a message without a view prints as a
// field/value listing.
import type { View } from "./output";

/** Keyed by the message's full proto name. */
export const VIEWS: Readonly<Record<string, View>> = {
  "qod.v1.Tenant": {
    plural: "tenants",
    columns: [
      ["NAME", "name"],
      ["DISPLAY NAME", "displayName"],
      ["AUTH", "authProvider"],
      ["DISABLED", "disabled"],
      ["POOLS", "pools"],
      ["CREATED", "createTime"],
    ],
  },
  "qod.v1.Database": {
    plural: "databases",
    columns: [
      ["NAME", "name"],
      ["KIND", "kind"],
      ["STATUS", "status"],
      ["SCHEMA", "defaultSchema"],
      ["DATA PATH", "effectiveDataPath"],
      ["CREATED", "createTime"],
    ],
  },
  "qod.v1.Pool": {
    plural: "pools",
    columns: [
      ["POOL", "pool"],
      ["USER", "user"],
      ["DATABASE", "database"],
      ["SIZE", "size"],
      ["DISABLED", "disabled"],
      ["READY", "ready"],
      ["CREATED", "createTime"],
    ],
    shownOnce: ["Password (shown only now)", "password"],
  },
  "qod.v1.User": {
    plural: "users",
    columns: [
      ["USERNAME", "username"],
      ["TENANT", "tenant"],
      ["ROLE", "role"],
      ["CREATED", "createTime"],
    ],
  },
  "qod.v1.AccessToken": {
    plural: "access tokens",
    columns: [
      ["ID", "id"],
      ["NAME", "name"],
      ["EXPIRES", "expireTime"],
      ["LAST USED", "lastUseTime"],
      ["REVOKED", "revoked"],
    ],
  },
};
