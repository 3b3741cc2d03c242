// Turns AuthService requests into commands, or field violations. Descriptions never repeat a
// submitted value: some fields hold secrets.
import type {
  ChangePasswordRequest,
  CreateAccessTokenRequest,
  CreateUserRequest,
  DeleteUserRequest,
  ExchangeOidcTokenRequest,
  ListUsersRequest,
  LoginRequest,
  RevokeAccessTokenRequest,
} from "../../gen/qod/v1/auth";
import { readPage, type Page } from "../pagination";
import { isOneOf, Violations } from "../validation";
import { MAX_PASSWORD_BYTES, MIN_PASSWORD_LENGTH } from "./passwords";
import { ROLES, type Role } from "../call/principal";

const MAX_USERNAME = 64;
const USERNAME_PATTERN = /^[A-Za-z0-9_.@-]{1,64}$/;
const ACCESS_TOKEN_ID_PATTERN = /^pat-[0-9a-f]{32}$/;
const MAX_TOKEN_NAME = 100;
const MAX_ID_TOKEN_BYTES = 16 * 1024;
const DAY_MS = 86400_000;
const DEFAULT_ACCESS_TOKEN_DAYS = 90;
const MAX_ACCESS_TOKEN_DAYS = 365;

/** An optional tenant field: empty is the superuser realm (null). */
function realm(v: Violations, value: string, field = "tenant"): string | null {
  return value.trim() === "" ? null : v.name(field, value, "invalid_id");
}

function username(v: Violations, value: string, field = "username"): string {
  if (!USERNAME_PATTERN.test(value)) v.add(field, "invalid_username", "must be 1 to 64 letters, digits or _ . @ -");
  return value;
}

/** A password that will be hashed: 8 characters to 72 bytes (bcrypt's limit). */
function newPassword(v: Violations, field: string, value: string): string {
  if (value.length < MIN_PASSWORD_LENGTH) v.add(field, "invalid_password", `must be at least ${MIN_PASSWORD_LENGTH} characters`);
  else if (Buffer.byteLength(value) > MAX_PASSWORD_BYTES) v.add(field, "invalid_password", `must be at most ${MAX_PASSWORD_BYTES} bytes`);
  return value;
}

/** A password to check: present and within bcrypt's limit, so a longer one never matches by truncation. */
function givenPassword(v: Violations, field: string, value: string): string {
  if (value === "") v.add(field, "invalid_password", "is required");
  else if (Buffer.byteLength(value) > MAX_PASSWORD_BYTES) v.add(field, "invalid_password", `must be at most ${MAX_PASSWORD_BYTES} bytes`);
  return value;
}

export interface LoginCommand {
  tenant: string | null;
  username: string;
  password: string;
}

/**
 * The username is not checked against the pattern (the bootstrap admin's comes from the
 * environment), only its length: it becomes a throttle key.
 */
export function validateLogin(request: LoginRequest): LoginCommand {
  const v = new Violations();
  const tenant = realm(v, request.tenant);
  if (request.username === "") v.add("username", "invalid_username", "is required");
  else if (request.username.length > MAX_USERNAME) v.add("username", "invalid_username", `must be at most ${MAX_USERNAME} characters`);
  const password = givenPassword(v, "password", request.password);
  v.throwIfAny();
  return { tenant, username: request.username, password };
}

export function validateChangePassword(request: ChangePasswordRequest): { currentPassword: string; newPassword: string } {
  const v = new Violations();
  const current = givenPassword(v, "current_password", request.currentPassword);
  const next = newPassword(v, "new_password", request.newPassword);
  if (current !== "" && current === next) v.add("new_password", "invalid_password", "must differ from the current password");
  v.throwIfAny();
  return { currentPassword: current, newPassword: next };
}

export interface NewUserCommand {
  tenant: string | null;
  username: string;
  password: string;
  role: Role;
}

/** A user without a tenant is a superuser, so its role can only be admin (the default there). */
export function validateCreateUser(request: CreateUserRequest): NewUserCommand {
  const v = new Violations();
  const tenant = realm(v, request.tenant);
  const name = username(v, request.username);
  const password = newPassword(v, "password", request.password);
  const given = request.role === "" ? (tenant === null ? "admin" : "user") : request.role;
  const role: Role = isOneOf(ROLES, given) ? given : "user";
  if (!isOneOf(ROLES, given)) v.add("role", "invalid_role", `must be ${ROLES.join(" or ")}`);
  else if (tenant === null && role !== "admin") v.add("role", "invalid_role", "must be admin for a superuser (no tenant)");
  v.throwIfAny();
  return { tenant, username: name, password, role };
}

export function validateListUsers(request: ListUsersRequest): { tenant: string | null; page: Page; scope: string } {
  const v = new Violations();
  const tenant = realm(v, request.tenant);
  const scope = `users:${tenant ?? ""}`;
  const page = readPage(v, request.pageSize, request.pageToken, scope);
  v.throwIfAny();
  return { tenant, page, scope };
}

export function validateDeleteUser(request: DeleteUserRequest): { tenant: string | null; username: string } {
  const v = new Violations();
  const tenant = realm(v, request.tenant);
  const name = username(v, request.username);
  v.throwIfAny();
  return { tenant, username: name };
}

/** `now` in epoch ms. Unset expiry means 90 days; at most a year, so no token lives forever. */
export function validateCreateAccessToken(request: CreateAccessTokenRequest, now: number): { name: string; expiresAt: number } {
  const v = new Violations();
  const name = request.name.trim();
  if (name === "" || name.length > MAX_TOKEN_NAME) v.add("name", "invalid_name", `must be 1 to ${MAX_TOKEN_NAME} characters`);
  const expiresAt = request.expireTime?.getTime() ?? now + DEFAULT_ACCESS_TOKEN_DAYS * DAY_MS;
  // A Timestamp beyond what Date holds arrives as an Invalid Date (NaN).
  if (!(expiresAt > now)) v.add("expire_time", "invalid_expire_time", "must be in the future");
  else if (expiresAt > now + MAX_ACCESS_TOKEN_DAYS * DAY_MS) v.add("expire_time", "invalid_expire_time", `must be within ${MAX_ACCESS_TOKEN_DAYS} days`);
  v.throwIfAny();
  return { name, expiresAt };
}

export function validateRevokeAccessToken(request: RevokeAccessTokenRequest): string {
  const v = new Violations();
  if (!ACCESS_TOKEN_ID_PATTERN.test(request.id)) v.add("id", "invalid_id", "must be pat- followed by 32 hex digits");
  v.throwIfAny();
  return request.id;
}

export function validateExchangeOidcToken(request: ExchangeOidcTokenRequest): { tenant: string; idToken: string } {
  const v = new Violations();
  const tenant = v.name("tenant", request.tenant, "invalid_id");
  if (request.idToken === "") v.add("id_token", "invalid_id_token", "is required");
  else if (Buffer.byteLength(request.idToken) > MAX_ID_TOKEN_BYTES) v.add("id_token", "invalid_id_token", "is too long");
  v.throwIfAny();
  return { tenant, idToken: request.idToken };
}
