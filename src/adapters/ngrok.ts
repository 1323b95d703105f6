/** The parts of the official ngrok SDK (@ngrok/ngrok) opskit uses, loaded only by `tunnel start --driver sdk`. */
export interface NgrokSdk {
  forward(config: Record<string, unknown>): Promise<NgrokSdkListener>;
  listeners(): Promise<NgrokSdkListener[]>;
}

export interface NgrokSdkListener {
  id(): string;
  url(): string | null;
  join(): Promise<void>;
  close(): Promise<void>;
}
