// docker-compose.yml as `docker-compose config` resolves it: the fields the compose tests read.

export interface ComposeService {
  image?: string;
  build?: { dockerfile: string };
  hostname?: string;
  command?: string[];
  privileged?: boolean;
  read_only?: boolean;
  network_mode?: string;
  networks?: Record<string, { aliases?: string[] } | null>;
  cap_add?: string[];
  cap_drop?: string[];
  security_opt?: string[];
  depends_on?: Record<string, { condition: string }>;
  environment?: Record<string, string>;
  ports?: Array<Record<string, unknown> | string>;
  secrets?: Array<string | { source: string; target?: string }>;
  volumes?: Array<string | { type: string; source: string; target: string }>;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  secrets: Record<string, { file: string }>;
  volumes?: Record<string, unknown>;
}
