// The seed's Supavisor setup page (shared/seeds/003): its command lines, copied as they are, and a
// runner that executes a curl line as a shell would.
import { exec } from "node:child_process";

export const FIRST_PUT = `curl  -X PUT \\
  'http://localhost:4000/api/tenants/dev_tenant' \\
  --header 'Accept: */*' \\
  --header 'User-Agent: Thunder Client (https://www.thunderclient.com)' \\
  --header 'Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZSIsInJvbGUiOiJhbm9uIiwiaWF0IjoxNjQ1MTkyODI0LCJleHAiOjE5NjA3Njg4MjR9.M9jrxyvPLkUxWgOYSf5dNdJ8v_eRrq810ShFRT8N-6M' \\
  --header 'Content-Type: application/json' \\
  --data-raw '{
  "tenant": {
    "db_host": "localhost",
    "db_port": 6432,
    "db_database": "postgres",
    "ip_version": "auto",
    "enforce_ssl": false,
    "require_user": false,
    "auth_query": "SELECT rolname, rolpassword FROM pg_authid WHERE rolname=$1;",
    "users": [
      {
        "db_user": "postgres",
        "db_password": "postgres",
        "pool_size": 20,
        "mode_type": "transaction",
        "is_manager": true
      }
    ]
  }
}'`;

export const SECOND_PUT = `curl -X PUT \\
  'http://localhost:4000/api/tenants/dev_tenant' \\
  --header 'Accept: application/json' \\
  --header 'Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZSIsInJvbGUiOiJhbm9uIiwiaWF0IjoxNjQ1MTkyODI0LCJleHAiOjE5NjA3Njg4MjR9.M9jrxyvPLkUxWgOYSf5dNdJ8v_eRrq810ShFRT8N-6M' \\
  --header 'Content-Type: application/json' \\
  --data-raw '{
  "tenant": {
    "db_host": "localhost",
    "db_port": 6432,
    "db_database": "postgres",
    "ip_version": "auto", // "auto" | "v4" | "v6"
    "require_user": true, // true | false
    "upstream_ssl": true, // true | false,
    "enforce_ssl": false, // true | false,
    "upstream_verify": "peer", // "none" | "peer"
    "upstream_tls_ca": "-----BEGIN CERTIFICATE-----\\nblalblalblablalblalblaba\\n-----END CERTIFICATE-----\\n", // "",
    "default_max_clients": 200,
    "default_pool_size": 15,
    "users": [
      {
        "db_user": "postgres",
        "db_password": "postgres",
        "mode_type": "transaction",
        "pool_checkout_timeout": 100,
        "pool_size": 10
      }
    ]
  }
}'`;

export const DELETE = `curl -X DELETE \\
  'http://localhost:4000/api/tenants/dev_tenant' \\
  --header 'Accept: application/json' \\
  --header 'Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZSIsInJvbGUiOiJhbm9uIiwiaWF0IjoxNjQ1MTkyODI0LCJleHAiOjE5NjA3Njg4MjR9.M9jrxyvPLkUxWgOYSf5dNdJ8v_eRrq810ShFRT8N-6M'`;

/** Runs a curl line as a shell would, adding `-sS -w` to read the status after the body. */
export function runCurl(line: string): Promise<{ status: number; body: string; json: unknown }> {
  return new Promise((resolve, reject) => {
    exec(line.replace(/^curl\s+/, `curl -sS -w '\\n%{http_code}' `), { shell: "/bin/bash" }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${err.message}\n${stderr}`));
      const cut = stdout.lastIndexOf("\n");
      const body = stdout.slice(0, cut);
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      resolve({ status: Number(stdout.slice(cut + 1)), body, json });
    });
  });
}

/** The text with its `// …` comments removed, as a user would fix the seed's second example. */
export const withoutComments = (line: string) => line.replace(/ \/\/ [^\n]*/g, "");

/** The seed's psql line: the transaction port, the manager user of dev_tenant. */
export const PSQL_LINE = "psql postgresql://postgres.dev_tenant:postgres@localhost:6543/postgres";
