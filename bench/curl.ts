import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * GET of `url` with curl into /dev/null: MB/s (10^6 bytes/s) by curl's own clock. curl is the client for the
 * pull figure because a Node client (HTTP parsing plus sha256 in one thread) caps the rate itself; the bytes
 * are checked by count and status here, and by digest in the RSS measurement's pull. A redirect to the
 * storage (S3 redirect mode) is followed, as a client does.
 */
export async function curlDownload(url: string, expectedBytes: number): Promise<number> {
  const { stdout } = await promisify(execFile)(
    'curl',
    ['--silent', '--show-error', '--location', '--output', '/dev/null', '--write-out', '%{http_code} %{size_download} %{time_total}', url],
    {
      timeout: 10 * 60 * 1000,
    },
  );
  const [status, bytes, seconds] = stdout.trim().split(' ').map(Number);
  if (status !== 200 || bytes !== expectedBytes) throw new Error(`curl GET ${url} -> ${status}, ${bytes} of ${expectedBytes} bytes`);
  return expectedBytes / 1e6 / seconds!;
}
