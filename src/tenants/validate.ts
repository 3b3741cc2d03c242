// Turns TenantService requests into commands, or field violations (SPEC §5, §6).
import type { CreateTenantRequest, SetTenantAuthRequest } from "../../gen/qod/v1/tenant";
import { isOneOf, Violations } from "../validation";
import type { NewTenant } from "./queries";
import { AUTH_PROVIDERS, type AuthProvider, type OidcProvider } from "./rows";

/** The key each OIDC provider needs beside `issuer` (the seed's rule). */
const PROVIDER_KEY: Record<OidcProvider, string> = {
  keycloak: "realm",
  google: "hd",
  azure: "tenantId",
  aws: "userPoolId",
};
/**
 * The audience an OIDC tenant's ID tokens must name. The seed's examples create OIDC tenants
 * without it, so it is not required here; but a tenant without it accepts no ID token at all
 * (auth/oidc.ts), since without it a token the issuer made for any other application would pass.
 */
const OPTIONAL_OIDC_KEYS = ["clientId"];
const MAX_DISPLAY_NAME = 200;
/**
 * Characters a display name may not hold: controls (C0, DEL, C1), and the bidirectional
 * embeddings, overrides, isolates and marks that make a name read otherwise than it is
 * (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F).
 */
const DISPLAY_NAME_FORBIDDEN = /[\p{Cc}\u202A-\u202E\u2066-\u2069\u200E\u200F]/u;
const MAX_CONFIG_VALUE = 1024;

function isHttpsUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "https:" && url.hostname !== "" && !url.username && !url.password && !url.search && !url.hash;
  } catch {
    return false;
  }
}

function validateAuth(v: Violations, providerField: string, provider: string, configField: string, config: Record<string, string>): AuthProvider {
  const authProvider = provider.trim() === "" ? "db" : provider.trim();
  if (!isOneOf(AUTH_PROVIDERS, authProvider)) {
    v.add(providerField, "invalid_auth_provider", `must be one of ${AUTH_PROVIDERS.join(", ")}`);
    return "db";
  }
  const keys = Object.keys(config);
  if (authProvider === "db") {
    if (keys.length > 0) v.add(configField, "invalid_auth_config", "must be empty for the db provider");
    return authProvider;
  }
  const required = ["issuer", PROVIDER_KEY[authProvider]];
  const allowed = new Set([...required, ...OPTIONAL_OIDC_KEYS]);
  for (const key of required) {
    if (!config[key]?.trim()) v.add(`${configField}.${key}`, "invalid_auth_config", `is required for ${authProvider}`);
  }
  for (const key of keys) {
    if (!allowed.has(key)) v.add(`${configField}.${key}`, "invalid_auth_config", `is not a setting of ${authProvider}`);
    else if ((config[key] ?? "").length > MAX_CONFIG_VALUE) v.add(`${configField}.${key}`, "invalid_auth_config", "is too long");
  }
  if (config.issuer?.trim() && !isHttpsUrl(config.issuer)) {
    v.add(`${configField}.issuer`, "invalid_auth_config", "must be a full https URL without credentials, query or fragment");
  }
  return authProvider;
}

export function validateCreateTenant(request: CreateTenantRequest): NewTenant {
  const v = new Violations();
  const field = request.name.trim() === "" && request.id.trim() !== "" ? "id" : "name";
  const name = v.name(field, field === "id" ? request.id : request.name, "invalid_id");
  const displayName = request.displayName.trim() === "" ? name : request.displayName.trim();
  if (displayName.length > MAX_DISPLAY_NAME) v.add("display_name", "invalid_display_name", `must be at most ${MAX_DISPLAY_NAME} characters`);
  else if (DISPLAY_NAME_FORBIDDEN.test(displayName)) v.add("display_name", "invalid_display_name", "must hold no control characters or bidirectional formatting characters");
  const authProvider = validateAuth(v, "auth_provider", request.authProvider, "auth_config", request.authConfig);
  v.throwIfAny();
  return { name, displayName, authProvider, authConfig: request.authConfig };
}

export function validateSetTenantAuth(request: SetTenantAuthRequest): { name: string; authProvider: AuthProvider; authConfig: Record<string, string> } {
  const v = new Violations();
  const name = v.name("name", request.name, "invalid_id");
  const authProvider = validateAuth(v, "auth_provider", request.authProvider, "auth_config", request.authConfig);
  v.throwIfAny();
  return { name, authProvider, authConfig: request.authConfig };
}

/** Validates the tenant name of a request that only names a tenant. */
export function validateTenantName(value: string, field = "name"): string {
  const v = new Violations();
  const name = v.name(field, value, "invalid_id");
  v.throwIfAny();
  return name;
}
